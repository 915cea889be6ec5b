//! The model's thread: owns the [`Classifier`] (libtorch runs one forward at a time here),
//! loads it once at start, and classifies uploads held in memory: decode with the usual
//! limits, preprocess for the model, top-k. Requests wait in a short bounded queue; when it
//! stays full the caller is told the server is busy (503, `Retry-After`) rather than piling
//! up uploads in memory.
//!
//! The model is loaded at start, in the background: the page and the catalog views work
//! at once (and without any model prepared), and the first upload does not pay the load.
//!
//! May not: write anything to disk, or block the async runtime (callers await a reply).

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::classify::{prepare_bytes, Batch, Classified, FileError, Scale, Settings};
use crate::model::Classifier;

/// Uploads waiting for the model at most (their memory is bounded by the upload budget;
/// one that finds the queue full waits [`super::blocking::WAIT`] for a place, then gets 503).
const QUEUE: usize = 16;

/// Why an upload got no classes.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Bad input: not an image, over a limit, corrupt.
    #[error(transparent)]
    Input(#[from] FileError),
    /// The model is still loading.
    #[error("the model is still loading; try again in a moment")]
    Loading,
    /// The model could not be loaded (the message says why and what to run).
    #[error("no model to classify with: {0}")]
    NoModel(String),
    /// Too many uploads are waiting.
    #[error("busy classifying other uploads; try again in a moment")]
    Busy,
    /// The model thread is gone (it only ends when the server does).
    #[error("the classifier stopped")]
    Stopped,
}

/// A classified upload: the model's name and the result.
pub type Answer = Result<(String, Classified), WorkError>;

struct Job {
    bytes: Vec<u8>,
    reply: oneshot::Sender<Answer>,
}

#[derive(Debug, Clone)]
enum ModelState {
    Loading,
    Ready(String),
    Failed(String),
}

/// The handle the handlers hold.
#[derive(Debug)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
    state: Arc<Mutex<ModelState>>,
}

impl Worker {
    /// Starts the thread; it runs `load` first (the model and the settings to classify
    /// with; a model missing or unusable is reported to each upload, and logged once), then
    /// serves uploads until the handle is dropped.
    pub fn start<L>(load: L) -> std::io::Result<Worker>
    where
        L: FnOnce() -> anyhow::Result<(Classifier, Settings)> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let state = Arc::new(Mutex::new(ModelState::Loading));
        let shared = Arc::clone(&state);
        let set = move |s: ModelState| *shared.lock().unwrap_or_else(|e| e.into_inner()) = s;
        std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let (classifier, settings) = match load().and_then(|(c, s)| {
                    c.warm_up(&[1])?;
                    Ok((c, s))
                }) {
                    Ok((c, s)) => {
                        tracing::info!(
                            model = c.name(),
                            "model ready for uploads in {:.1} s",
                            started.elapsed().as_secs_f64()
                        );
                        set(ModelState::Ready(c.name().to_string()));
                        (c, s)
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        tracing::warn!("uploads cannot be classified: {msg}");
                        set(ModelState::Failed(msg));
                        // Keep answering, so each upload gets the reason.
                        while let Some(job) = rx.blocking_recv() {
                            let _ = job.reply.send(Err(WorkError::Stopped));
                        }
                        return;
                    }
                };
                while let Some(job) = rx.blocking_recv() {
                    let answer = classify(&classifier, &job.bytes, &settings)
                        .map(|c| (classifier.name().to_string(), c));
                    let _ = job.reply.send(answer);
                }
            })?;
        Ok(Worker { tx, state })
    }

    /// Classifies an image held in memory (the top-k of the configuration).
    pub async fn classify(&self, bytes: Vec<u8>) -> Answer {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            ModelState::Loading => return Err(WorkError::Loading),
            ModelState::Failed(m) => return Err(WorkError::NoModel(m.clone())),
            ModelState::Ready(_) => {}
        }
        let (reply, answer) = oneshot::channel();
        let job = Job { bytes, reply };
        match self.tx.send_timeout(job, super::blocking::WAIT).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => return Err(WorkError::Busy),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(WorkError::Stopped),
        }
        answer.await.unwrap_or(Err(WorkError::Stopped))
    }

    /// The loaded model's name, once it is loaded.
    pub fn model(&self) -> Option<String> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            ModelState::Ready(name) => Some(name.clone()),
            _ => None,
        }
    }
}

/// Decode (limits, orientation; every pixel, as the reference does), preprocess, top-k:
/// what `phototag classify` does to a file.
fn classify(
    classifier: &Classifier,
    bytes: &[u8],
    settings: &Settings,
) -> Result<Classified, WorkError> {
    let input = prepare_bytes(bytes, settings, Scale::Full)?;
    let mut batch = Batch::new(1);
    batch.push((), Ok(input));
    let (_, result) = batch
        .run(classifier, settings.top_k)
        .pop()
        .ok_or(FileError::NoOutput)?;
    Ok(result?)
}
