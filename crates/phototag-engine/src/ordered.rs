//! An ordered parallel map with bounded memory: `workers` threads apply a function to the
//! items (worker `w` takes items `w`, `w + workers`, ...), each into its own bounded queue,
//! and the caller receives the results strictly in input order. Used to decode several
//! photos at once while the model runs, so both cores stay busy when decoding is the slow
//! half (12-megapixel JPEGs).
//!
//! May not: reorder results, hold more than `depth` finished results per worker, or keep
//! working after the consumer returns.

use std::sync::mpsc;

/// How many decode workers `0` means: one per core.
pub fn auto_workers(requested: usize) -> usize {
    if requested == 0 {
        crate::model::classifier::all_cores()
    } else {
        requested
    }
}

/// Applies `work` to every item on `workers` threads and hands `consume` an iterator over
/// the results in input order; what `consume` returns is returned. When `consume` returns
/// before the end, the workers finish the item at hand and exit. At most `depth` finished
/// results wait per worker.
pub fn map<T, R, W, C, O>(items: Vec<T>, workers: usize, depth: usize, work: W, consume: C) -> O
where
    T: Send,
    R: Send,
    W: Fn(T) -> R + Sync,
    C: FnOnce(&mut Ordered<R>) -> O,
{
    let n = items.len();
    let workers = workers.clamp(1, n.max(1));
    let mut stripes: Vec<Vec<T>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        stripes[i % workers].push(item);
    }
    let work = &work;
    std::thread::scope(|scope| {
        let mut receivers = Vec::with_capacity(workers);
        for stripe in stripes {
            let (tx, rx) = mpsc::sync_channel::<R>(depth.max(1));
            receivers.push(rx);
            scope.spawn(move || {
                for item in stripe {
                    if tx.send(work(item)).is_err() {
                        break;
                    }
                }
            });
        }
        let mut ordered = Ordered {
            receivers,
            next: 0,
            len: n,
        };
        // Dropping `ordered` (its receivers) makes every worker's next send fail.
        consume(&mut ordered)
    })
}

/// The results of `map`, in input order.
pub struct Ordered<R> {
    receivers: Vec<mpsc::Receiver<R>>,
    next: usize,
    len: usize,
}

impl<R> Iterator for Ordered<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        if self.next >= self.len {
            return None;
        }
        // A worker only hangs up after sending its whole stripe.
        let r = self.receivers[self.next % self.receivers.len()]
            .recv()
            .ok()?;
        self.next += 1;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn results_come_in_input_order_whatever_the_timing() {
        let items: Vec<u64> = (0..50).collect();
        let mut seen = Vec::new();
        map(
            items,
            3,
            2,
            |x| {
                // Early items are the slow ones, so later workers finish first.
                std::thread::sleep(Duration::from_millis((50 - x) % 7));
                x * 10
            },
            |results| seen.extend(results),
        );
        assert_eq!(seen, (0..50).map(|x| x * 10).collect::<Vec<_>>());
    }

    #[test]
    fn stopping_early_ends_the_workers() {
        let done = AtomicUsize::new(0);
        let mut got = 0;
        map(
            (0..1000).collect::<Vec<u32>>(),
            2,
            1,
            |x| {
                done.fetch_add(1, Ordering::SeqCst);
                x
            },
            |results| {
                for _ in results {
                    got += 1;
                    if got == 5 {
                        break;
                    }
                }
            },
        );
        assert_eq!(got, 5);
        // Each worker can be at most a queue (1) and the item at hand ahead, plus the one
        // whose send failed.
        assert!(
            done.load(Ordering::SeqCst) < 20,
            "{}",
            done.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn empty_input_and_more_workers_than_items() {
        let mut seen = Vec::new();
        map(Vec::<u8>::new(), 4, 1, |x| x, |r| seen.extend(r));
        assert!(seen.is_empty());
        map(vec![7u8, 8], 8, 1, |x| x, |r| seen.extend(r));
        assert_eq!(seen, vec![7, 8]);
    }
}
