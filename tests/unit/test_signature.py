from __future__ import annotations

from docjobs.signatures import SIGNATURE_WINDOW_SECONDS, SignatureVerifier, sign

KEY = b"secret"
BODY = b'{"name":"demo.greet","jobId":"1"}'


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_fresh_genuine_request_is_accepted_once() -> None:
    verifier = SignatureVerifier(KEY, clock=Clock(1_000_000))
    header = sign(KEY, 1_000_000, BODY)
    assert verifier.verify("1000000", header, BODY) is None
    assert "replayed request" == verifier.verify("1000000", header, BODY)


def test_a_request_signed_with_another_key_is_refused() -> None:
    verifier = SignatureVerifier(KEY, clock=Clock(1_000_000))
    assert "bad signature" == verifier.verify("1000000", sign(b"other", 1_000_000, BODY), BODY)


def test_a_changed_body_or_timestamp_is_refused() -> None:
    verifier = SignatureVerifier(KEY, clock=Clock(1_000_000))
    header = sign(KEY, 1_000_000, BODY)
    assert "bad signature" == verifier.verify("1000000", header, BODY.replace(b"1", b"2"))
    assert "bad signature" == verifier.verify("1000001", header, BODY)


def test_a_stale_or_future_timestamp_is_refused() -> None:
    verifier = SignatureVerifier(KEY, clock=Clock(1_000_000))
    old = 1_000_000 - SIGNATURE_WINDOW_SECONDS - 1
    future = 1_000_000 + SIGNATURE_WINDOW_SECONDS + 1
    assert "stale timestamp" == verifier.verify(str(old), sign(KEY, old, BODY), BODY)
    assert "stale timestamp" == verifier.verify(str(future), sign(KEY, future, BODY), BODY)


def test_missing_or_malformed_headers_are_refused() -> None:
    verifier = SignatureVerifier(KEY, clock=Clock(1_000_000))
    assert "missing signature headers" == verifier.verify(None, "v1=00", BODY)
    assert "missing signature headers" == verifier.verify("1000000", None, BODY)
    assert "malformed timestamp" == verifier.verify("soon", "v1=00", BODY)


def test_replay_memory_forgets_signatures_once_they_are_stale_anyway() -> None:
    clock = Clock(1_000_000)
    verifier = SignatureVerifier(KEY, clock=clock)
    verifier.verify("1000000", sign(KEY, 1_000_000, BODY), BODY)
    clock.now += SIGNATURE_WINDOW_SECONDS + 10
    fresh = int(clock.now)
    assert verifier.verify(str(fresh), sign(KEY, fresh, BODY), BODY) is None
    assert 1 == len(verifier._replays._seen)
