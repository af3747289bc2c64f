//! redb plugin: embedded run catalog and blob store.
