//! (being written)
mod spdy;
