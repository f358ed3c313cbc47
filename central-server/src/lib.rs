//! The Musubi central server: registry, signed global configuration,
//! management services.
//!
//! Not built yet: until the central-server issue lands, each security server
//! reads a static trust file shaped like X-Road's shared-params instead.
