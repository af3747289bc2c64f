//! The storage conformance suite every backend plugin runs, gated by capability.
