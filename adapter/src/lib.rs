//! The Musubi ECHONET Lite adapter: turns home devices into X-Road services.
//!
//! Not built yet: the demo uses a small built-in SOAP provider until the
//! adapter issue lands.
