//! Generic DAG scheduler: dependencies, bounded concurrency, events. Knows nothing about benchmarks or storage.
