//! The conformance suite every backend runs (placeholder until the backend lands).
