//! placeholder until the PTY wrapper lands
