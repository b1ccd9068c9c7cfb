//! Asking another program (a runtime's API, an OTLP receiver) with a bound on the wait: a
//! check never hangs on a socket that accepts and never answers.

use std::time::Duration;

/// How long an answer is waited for.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Why a probe has no answer to show.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError<E> {
    /// The other side answered, with an error (shown with its causes by
    /// [`crate::remote::error_chain`]).
    #[error(transparent)]
    Failed(E),
    /// It did not answer within [`ANSWER_WITHIN`].
    #[error("no answer within {} s", ANSWER_WITHIN.as_secs())]
    NoAnswer,
    /// No runtime to ask with.
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// `fut`'s answer, or why there was none within [`ANSWER_WITHIN`].
pub fn answer<T, E>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ProbeError<E>> {
    rt.block_on(async {
        match tokio::time::timeout(ANSWER_WITHIN, fut).await {
            Ok(answered) => answered.map_err(ProbeError::Failed),
            Err(_) => Err(ProbeError::NoAnswer),
        }
    })
}
