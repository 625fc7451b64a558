//! A tiny HTTP/1.1 server on 127.0.0.1 for download tests (the `dataset_url` code): one
//! connection at a time, unknown paths 404, and it stops by itself after `max_requests`
//! requests or `max_secs` seconds. Shared by `nequip-core`'s unit tests (`data/download.rs`)
//! and `nequip-plugins/tests/nequip_configs.rs` through `#[path]`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the server answers for a path.
#[derive(Clone)]
pub enum Reply {
    Ok(Vec<u8>),
    /// Announces `len` bytes, sends `data` (shorter), closes.
    Truncated { data: Vec<u8>, len: usize },
}

pub struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    /// Serve `routes` (path without query → reply).
    pub fn start_replies(routes: BTreeMap<String, Reply>, max_requests: usize, max_secs: u64) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(max_secs);
            while count.load(Ordering::SeqCst) < max_requests && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let target = request.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or(target);
                let mut stream = reader.into_inner();
                let (status, body, len) = match routes.get(path) {
                    Some(Reply::Ok(d)) => ("200 OK", d.clone(), d.len()),
                    Some(Reply::Truncated { data, len }) => ("200 OK", data.clone(), *len),
                    None => ("404 Not Found", b"not found".to_vec(), 9),
                };
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(&body);
                let _ = stream.flush();
            }
        });
        Server { base, requests }
    }

    /// Serve plain bodies.
    pub fn start(routes: BTreeMap<&str, Vec<u8>>, max_requests: usize, max_secs: u64) -> Server {
        Self::start_replies(routes.into_iter().map(|(k, v)| (k.to_string(), Reply::Ok(v))).collect(), max_requests, max_secs)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}
