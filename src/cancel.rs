//! What an operation undoes when its future is dropped part way: around a `select!` or a
//! timeout natively, or by an aborted promise on the web (`{ signal }`). A launch, migration or
//! terminate changes a kernel before an await and finishes or takes that change back after it;
//! dropped at that await, only a guard is left to do it.

/// Runs its closure when dropped, unless [`done`](Self::done) was called first.
#[must_use = "dropped at once, it undoes at once"]
pub(crate) struct OnCancel<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnCancel<F> {
    /// Undoes with `undo` unless the operation gets past its await.
    pub fn new(undo: F) -> Self {
        OnCancel(Some(undo))
    }

    /// The operation got past its await: nothing to undo.
    pub fn done(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnCancel<F> {
    fn drop(&mut self) {
        if let Some(undo) = self.0.take() {
            undo();
        }
    }
}
