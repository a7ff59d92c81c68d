//! End-to-end test support: helpers to start the real offhook binary.
