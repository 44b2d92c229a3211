//! JSON log lines (CONTRACT 7): one object a line, with the request's ids from the event span.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// The level filter: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), else
/// `RUST_LOG` (`level` or `target=level`, comma-separated), else `info`. A plain target
/// filter, not `EnvFilter`: it needs no regular-expression engine in the binary, which
/// keeps the function's memory within its budget (docs/performance.md).
pub fn filter() -> Targets {
    let directive = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| level.to_ascii_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = directive
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    // lambda_runtime logs every raw event at TRACE, and an event's ResponseURL carries a
    // presigned query, a credential: that module never logs below DEBUG (CONTRACT 7).
    filter.with_target("lambda_runtime::layers::api_response", LevelFilter::DEBUG)
}

/// The subscriber the function logs through, writing JSON lines to `writer`.
pub fn subscriber<W>(writer: W, filter: Targets) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
        .with(filter)
}

/// Installs the JSON subscriber for the process, on standard output, and routes panic
/// messages through it so that they are JSON lines too (the guard still answers FAILED).
pub fn init() {
    // Only fails if a subscriber is already installed, which then keeps logging.
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout, filter()));
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
}
