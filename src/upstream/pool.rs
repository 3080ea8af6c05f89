//! An endpoint's idle upstream connections: a small queue for the steady state and an
//! overflow for what a burst leaves, lock-free (the request path takes and returns them).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_queue::{ArrayQueue, SegQueue};

use crate::balance::state::now_ms;

/// Idle upstream connections kept per endpoint. As many as were in use at once, up to this:
/// with 1,000 clients on one endpoint, a bound of 64 closed most connections as their
/// responses ended and opened new ones for the next requests (4,453 connects for 9,356
/// requests). Past the first 64 they are kept for [`OVERFLOW_IDLE`]; an idle connection the
/// backend closed is dropped when next met.
pub const IDLE_CONNECTIONS: usize = 1024;

/// An endpoint's idle connections, lock-free: a small fixed queue taken from first, and an
/// overflow that grows in blocks as connections come back (an array sized for the whole bound
/// would cost every endpoint that much at once). Taking from the small queue first keeps a
/// steady load on the same few connections, warm in cache on both sides, even after a burst
/// left hundreds idle. The overflow holds what a burst left only for [`OVERFLOW_IDLE`]: each
/// request looks at one of them and closes it once it is that old (an idle upstream
/// connection keeps its buffers, tens of KiB).
#[derive(Debug)]
pub struct IdlePool<C> {
    hot: ArrayQueue<C>,
    /// With the time it was put there (`now_ms`).
    overflow: SegQueue<(C, u64)>,
    /// Connections in `overflow`; at most `IDLE_CONNECTIONS - HOT_CONNECTIONS`.
    overflow_len: AtomicUsize,
}

/// The size of an idle pool's first queue.
const HOT_CONNECTIONS: usize = 64;
/// How long a connection may sit in an idle pool's overflow.
pub const OVERFLOW_IDLE: Duration = Duration::from_secs(5);

impl<C> Default for IdlePool<C> {
    fn default() -> Self {
        IdlePool {
            hot: ArrayQueue::new(HOT_CONNECTIONS),
            overflow: SegQueue::new(),
            overflow_len: AtomicUsize::new(0),
        }
    }
}

impl<C> IdlePool<C> {
    /// Keeps `conn` unless the pool is full; then hands it back (dropping it closes it).
    pub fn push(&self, conn: C) -> Result<(), C> {
        let Err(conn) = self.hot.push(conn) else {
            return Ok(());
        };
        let bound = IDLE_CONNECTIONS - HOT_CONNECTIONS;
        if self.overflow_len.fetch_add(1, Ordering::Relaxed) >= bound {
            self.overflow_len.fetch_sub(1, Ordering::Relaxed);
            return Err(conn);
        }
        self.overflow.push((conn, now_ms()));
        Ok(())
    }

    /// Closes the oldest overflow connection if it has been idle `max_idle` (none are looked
    /// at while the overflow is empty, the steady state). One per call: the request path
    /// calls it, and a burst's leftovers go within that many requests.
    pub fn expire_one(&self, max_idle: Duration) {
        if self.overflow_len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some((conn, since)) = self.overflow.pop() else {
            return;
        };
        if now_ms().saturating_sub(since) >= max_idle.as_millis() as u64 {
            self.overflow_len.fetch_sub(1, Ordering::Relaxed);
            drop(conn);
        } else {
            self.overflow.push((conn, since));
        }
    }

    pub fn pop(&self) -> Option<C> {
        if let Some(conn) = self.hot.pop() {
            return Some(conn);
        }
        let (conn, _) = self.overflow.pop()?;
        self.overflow_len.fetch_sub(1, Ordering::Relaxed);
        Some(conn)
    }

    pub fn len(&self) -> usize {
        self.hot.len() + self.overflow_len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_pool_keeps_up_to_its_bound() {
        let pool: IdlePool<usize> = IdlePool::default();
        for i in 0..IDLE_CONNECTIONS {
            assert_eq!(pool.push(i), Ok(()));
        }
        assert_eq!(pool.push(usize::MAX), Err(usize::MAX), "full: handed back");
        assert_eq!(pool.len(), IDLE_CONNECTIONS);
        for i in 0..HOT_CONNECTIONS {
            assert_eq!(pool.pop(), Some(i), "the first queue, oldest first");
        }
        assert_eq!(pool.push(7), Ok(()), "room again");
        assert_eq!(pool.pop(), Some(7), "the first queue is taken from first");
        assert_eq!(pool.pop(), Some(HOT_CONNECTIONS), "then the overflow");
        while pool.pop().is_some() {}
        assert!(pool.is_empty());
    }

    #[test]
    fn a_burst_left_in_the_overflow_expires_one_per_call() {
        let pool: IdlePool<usize> = IdlePool::default();
        for i in 0..HOT_CONNECTIONS + 2 {
            pool.push(i).unwrap();
        }
        pool.expire_one(OVERFLOW_IDLE);
        assert_eq!(pool.len(), HOT_CONNECTIONS + 2, "young: kept");
        pool.expire_one(Duration::ZERO);
        assert_eq!(pool.len(), HOT_CONNECTIONS + 1, "old enough: closed");
        pool.expire_one(Duration::ZERO);
        pool.expire_one(Duration::ZERO);
        assert_eq!(
            pool.len(),
            HOT_CONNECTIONS,
            "the first queue is never expired"
        );
    }
}
