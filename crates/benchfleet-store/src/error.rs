use std::fmt;

/// What kind of failure a [`StoreError`] is; callers branch on this, people read the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key or id does not exist.
    NotFound,
    /// The key is malformed or escapes the store (e.g. `..`, an absolute path).
    InvalidKey,
    /// Stored bytes do not match their digest.
    Corrupt,
    /// The backend lacks a capability this operation needs.
    Unsupported,
    /// A passing failure (connection reset, timeout, throttling): retrying may succeed.
    Transient,
    /// Stored data could not be decoded.
    Decode,
    /// Anything else (I/O, permissions, configuration).
    Other,
}

/// A storage failure, with the context people need: which backend, which operation, which key.
#[derive(Debug)]
pub struct StoreError {
    pub kind: ErrorKind,
    pub backend: String,
    pub op: &'static str,
    pub key: Option<String>,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    pub fn new(
        kind: ErrorKind,
        backend: impl Into<String>,
        op: &'static str,
        message: impl Into<String>,
    ) -> Self {
        StoreError {
            kind,
            backend: backend.into(),
            op,
            key: None,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_key(mut self, key: impl fmt::Display) -> Self {
        self.key = Some(key.to_string());
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn not_found(backend: impl Into<String>, op: &'static str, key: impl fmt::Display) -> Self {
        StoreError::new(ErrorKind::NotFound, backend, op, "not found").with_key(key)
    }

    /// An I/O error, classified as transient when the OS says it is.
    pub fn io(backend: impl Into<String>, op: &'static str, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::Interrupted
            | K::TimedOut
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted => ErrorKind::Transient,
            _ => ErrorKind::Other,
        };
        StoreError::new(kind, backend, op, err.to_string()).with_source(err)
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.backend, self.op)?;
        if let Some(key) = &self.key {
            write!(f, " `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
