//! placeholder

pub mod limits;
