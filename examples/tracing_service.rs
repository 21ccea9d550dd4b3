//! A service that logs through `tracing` into a ringflush ring: a span per
//! request with its fields (one recorded when known), events with fields,
//! `EnvFilter` from `RUST_LOG`, and the fmt layer on stderr alongside.
//!
//! ```sh
//! cargo build --release
//! target/release/ringflush --shm /svc --file svc.log --format json --exit-when-idle &
//! RUST_LOG=info,tracing_service::db=debug \
//!     cargo run --release --example tracing_service -- /svc 200
//! ```
//!
//! `svc.log` then has one JSON object per event, e.g. (shortened)
//! `{"levelname":"INFO","name":"tracing_service","message":"worker{id=1}:request{method=\"GET\"
//! path=/items/1 status=200}: served rows=1 user=1001", ...,"rows":1,
//! "spans":[{"name":"worker","id":1},{"name":"request","method":"GET","path":"/items/1","status":200}],
//! "user":1001}`;
//! with `--format '%(asctime)s %(levelname)s %(name)s %(message)s'` the
//! same events read as the fmt layer prints them on stderr. The flusher
//! exits (`--exit-when-idle`) once the service has.

use std::time::Duration;

use ringflush_producer::RingLayer;
use tracing::field;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

struct Request {
    method: &'static str,
    path: String,
    user: u64,
}

mod db {
    /// A pretend query: debug events under the `tracing_service::db` target.
    pub fn query(table: &str, id: u64) -> Result<u64, std::io::Error> {
        tracing::debug!(table, id, "query");
        if id % 17 == 0 {
            return Err(std::io::Error::other("deadlock detected"));
        }
        Ok(id % 5)
    }
}

#[tracing::instrument(
    name = "request",
    skip(req),
    fields(method = req.method, path = %req.path, status = field::Empty)
)]
fn handle(req: &Request) {
    let id: u64 = req.path.rsplit('/').next().unwrap().parse().unwrap();
    match db::query("items", id) {
        Ok(rows) => {
            tracing::Span::current().record("status", 200);
            tracing::info!(rows, user = req.user, "served");
        }
        Err(e) => {
            tracing::Span::current().record("status", 500);
            tracing::error!(
                error = &e as &(dyn std::error::Error + 'static),
                user = req.user,
                "query failed"
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let shm = args.next().unwrap_or_else(|| "/svc".into());
    let requests: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(200);

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(RingLayer::open(&shm)?)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();

    tracing::info!(shm, requests, "service started");
    let workers: Vec<_> = (1..=4u64)
        .map(|worker| {
            std::thread::Builder::new()
                .name(format!("worker-{worker}"))
                .spawn(move || {
                    let span = tracing::info_span!("worker", id = worker);
                    let _entered = span.enter();
                    for n in (worker..=requests).step_by(4) {
                        handle(&Request {
                            method: if n % 3 == 0 { "POST" } else { "GET" },
                            path: format!("/items/{n}"),
                            user: 1000 + n % 7,
                        });
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
        })
        .collect::<Result<_, _>>()?;
    for w in workers {
        w.join().expect("worker panicked");
    }
    tracing::warn!(requests, "service stopping");
    Ok(())
}
