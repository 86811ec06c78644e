//! The last lines a child process wrote, kept so that a failure can show them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufRead, Lines};
use tokio::task::JoinHandle;

/// How many lines a tail keeps: enough for a panic message or a startup error.
const TAIL_LINES: usize = 50;

/// The last [`TAIL_LINES`] lines of a child's output, shared with the tasks reading it.
#[derive(Clone, Default)]
pub(crate) struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputTail {
    pub(crate) fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The tail as one block of text for an error message.
    pub(crate) fn render(&self) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            "(no output)".to_owned()
        } else {
            lines.join("\n")
        }
    }

    /// Reads `lines` into the tail until the stream ends, so the child never blocks on a
    /// full pipe. With `echo`, each line also goes to this process's standard error,
    /// where the test harness captures it and shows it with a failing test.
    pub(crate) fn follow<R>(&self, mut lines: Lines<R>, echo: bool) -> JoinHandle<()>
    where
        R: AsyncBufRead + Unpin + Send + 'static,
    {
        let tail = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("{line}");
                }
                tail.push(line);
            }
        })
    }
}
