//! End-to-end tests of Musubi over real sockets on loopback: see `it/`. Each
//! test starts the demo network on its own 127.0.N.x addresses with the real
//! ports, so tests run in parallel without clashing.
