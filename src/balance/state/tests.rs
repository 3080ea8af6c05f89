use super::*;

#[test]
fn state_is_shared_by_address_and_pruned() {
    let registry: EndpointRegistry<()> = EndpointRegistry::default();
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let first = registry.build().state(a);
    let guard = first.begin();
    let again = registry.build().state(a);
    assert_eq!(again.in_flight(), 1, "same state for the same address");
    drop(registry.build());
    assert_eq!(registry.len(), 1, "kept while something holds it");
    drop((guard, first, again));
    drop(registry.build());
    assert!(registry.is_empty(), "forgotten once nothing holds it");
    let fresh = registry.build().state(a);
    assert_eq!(fresh.in_flight(), 0, "a new state after pruning");
}

#[test]
fn failures_back_off_and_success_clears() {
    let state: EndpointState<()> = EndpointState::new("127.0.0.1:1".parse().unwrap(), None);
    assert!(!state.is_down());
    state.mark_failed();
    assert!(state.is_down());
    state.mark_ok();
    assert!(!state.is_down());
}

#[test]
fn the_first_back_off_is_the_base_whatever_ejected_and_doubles_after() {
    let state: EndpointState<()> = EndpointState::new("127.0.0.1:1".parse().unwrap(), None);
    let backoff = |state: &EndpointState<()>| {
        Duration::from_millis(state.down_until().saturating_sub(now_ms()))
    };
    for _ in 0..EJECT_AFTER {
        state.record_failure(Failure::Response);
    }
    let first = backoff(&state);
    assert!(
        first <= BACKOFF_BASE && first > BACKOFF_BASE / 2,
        "{first:?}"
    );
    state.record_failure(Failure::Response);
    let second = backoff(&state);
    assert!(
        second > BACKOFF_BASE && second <= BACKOFF_BASE * 2,
        "{second:?}"
    );
    state.mark_ok();
    state.mark_failed();
    let connect = backoff(&state);
    assert!(
        connect <= BACKOFF_BASE && connect > BACKOFF_BASE / 2,
        "{connect:?}"
    );
    for _ in 0..10 {
        state.mark_failed();
    }
    assert!(backoff(&state) <= BACKOFF_CAP, "capped");
}

#[test]
fn response_failures_eject_after_several_in_a_row_and_are_counted() {
    let ejections = prometheus::IntCounter::new("e", "e").unwrap();
    let counters = EndpointCounters {
        ejections: ejections.clone(),
        idle_discarded: prometheus::IntCounter::new("d", "d").unwrap(),
    };
    let state: EndpointState<()> =
        EndpointState::new("127.0.0.1:1".parse().unwrap(), Some(Arc::new(counters)));
    for _ in 1..EJECT_AFTER {
        state.record_failure(Failure::Response);
        assert!(!state.is_down(), "fewer than EJECT_AFTER failures");
    }
    state.mark_ok();
    for _ in 1..EJECT_AFTER {
        state.record_failure(Failure::Response);
    }
    assert!(!state.is_down(), "a success in between resets the count");
    state.record_failure(Failure::Response);
    assert!(state.is_down());
    assert_eq!(ejections.get(), 1);
    state.record_failure(Failure::Response);
    assert_eq!(
        ejections.get(),
        1,
        "already out: a longer back-off, not a new ejection"
    );
}
