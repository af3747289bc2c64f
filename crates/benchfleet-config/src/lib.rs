//! Layered configuration with figment: defaults < project file < environment < flags, with provenance.
