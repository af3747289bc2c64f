//! Local-disk blob store plugin: atomic writes, sharded paths, validated keys.
