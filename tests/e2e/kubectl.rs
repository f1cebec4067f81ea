//! kubectl e2e (filled in next).
