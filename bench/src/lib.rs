//! What the `extractors` benchmark and the `load` binary share: a throwaway
//! `redis-server` for the runs on the Redis session store, and free loopback ports.

#![forbid(unsafe_code)]

pub mod redis_server;

use std::net::{Ipv4Addr, TcpListener};

/// A free port on 127.0.0.1 (free when asked; the child that binds it does so right after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
