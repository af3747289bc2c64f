//! benchfleet's library facade: composes scheduler, metrics, storage, analysis and reports; names the plugins behind features.
