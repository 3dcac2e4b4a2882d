"""The HTTP refiner and image editor against a stand-in server: hostile answers are refused with the
backend's own error naming the endpoint, within a time bound; answers past the size caps or trickling past
the deadline are cut off; 429/5xx are retried with backoff (Retry-After honoured, capped), other errors
are not; TLS certificates are verified; the API key never reaches a message, a log, or a redirected host."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import random
import ssl
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_cases import TIME_BOUND_S
from tests.fuzz_http import (
    PLAN,
    StandIn,
    _chat,
    _image_answer,
    editor_response,
    hostile_reply,
    png,
    refiner_response,
    send,
    trickle,
)

KEY = "sk-SECRET-KEY"
RUNS = {"refiner": refiner_response, "editor": editor_response}


@pytest.fixture(scope="module")
def server():
    with StandIn() as s:
        yield s


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_hostile_answers_are_refused_clearly(server, kind, caplog):
    caplog.set_level(logging.DEBUG)

    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(rnd=st.randoms(use_true_random=False))
    def run(rnd: random.Random) -> None:
        outcome = RUNS[kind](server, [hostile_reply(rnd, server, kind) for _ in range(4)])
        assert outcome.kind != "escaped", outcome.detail
        assert outcome.seconds < TIME_BOUND_S, outcome.detail
        assert KEY not in outcome.detail

    run()
    assert KEY not in caplog.text


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_good_answers_are_accepted(server, kind):
    good = _chat(json.dumps(PLAN)) if kind == "refiner" else _image_answer(png())
    assert RUNS[kind](server, [send(200, good)]).kind == "accepted"
    assert server.auth == [f"Bearer {KEY}"]


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_an_answer_declaring_a_terabyte_is_refused_at_once(server, kind):
    outcome = RUNS[kind](server, [send(200, b"x" * 64, length=10**12)])
    assert outcome.kind == "refused" and "more than the" in outcome.detail and outcome.seconds < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(RUNS))
def test_a_trickling_answer_is_cut_at_the_deadline(server, kind):
    """One byte every 0.1 s: every socket read succeeds, the answer would take 50 s; timeout is 2 s a try."""
    start = time.monotonic()
    outcome = RUNS[kind](server, [trickle(b" " * 500, 0.1)])
    elapsed = time.monotonic() - start
    assert outcome.kind == "refused", outcome.detail
    assert elapsed < 3 * 2.0 + 3.0  # three tries of at most the 2 s timeout each, plus pauses
    assert len(server.paths) == 3


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_429_and_5xx_are_retried_honouring_retry_after_others_are_not(server, kind):
    from engine.edit.editors.http_image import HttpImageEditor
    from engine.prompting.llm_http import HttpLLMConfig, HttpLLMRefiner

    waits: list[float] = []
    good = _chat(json.dumps(PLAN)) if kind == "refiner" else _image_answer(png())
    server.script([send(429, b"{}", {"Retry-After": "0.2"}), send(503, b"{}"), send(200, good)])
    if kind == "refiner":
        client = HttpLLMRefiner(HttpLLMConfig(base_url=f"{server.url}/v1", timeout=2, retries=2, backoff=0.05),
                                sleep=waits.append)
        client.refine("red lips")
    else:
        import torch

        client = HttpImageEditor(f"{server.url}/v1", size=32, timeout=2, retries=2, backoff=0.05, sleep=waits.append)
        from engine.prompting.plan import sanitize_plan

        client.edit(torch.rand(8, 8, 3), torch.ones(8, 8), sanitize_plan(PLAN)[0])
    assert len(server.paths) == 3
    assert waits == [0.2, 0.1]  # the server's Retry-After, then the doubled backoff
    outcome = RUNS[kind](server, [send(401, b'{"error": "bad key"}'), send(200, good)])
    assert outcome.kind == "refused" and len(server.paths) == 1 and "401" in outcome.detail


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_the_key_is_never_in_a_message_even_when_the_server_echoes_it(server, kind, caplog):
    caplog.set_level(logging.DEBUG)
    echo = send(500, f'{{"error": "your key Bearer {KEY} is wrong"}}'.encode())
    outcome = RUNS[kind](server, [echo])
    assert outcome.kind == "refused" and "500" in outcome.detail
    assert KEY not in outcome.detail and KEY not in caplog.text
    if kind == "editor":  # the editor shows the server's error text: with the key blanked out
        assert "your key Bearer *** is wrong" in outcome.detail


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_the_key_is_not_sent_where_a_redirect_points(server, kind):
    with StandIn() as other:
        other.script([send(200, b"{}")])
        outcome = RUNS[kind](server, [send(302, b"", {"Location": f"{other.url}/v1/steal"})])
        assert outcome.kind == "refused"
        assert server.auth[0] == f"Bearer {KEY}"
        assert other.paths and other.auth == [None] * len(other.paths)


def test_a_password_in_the_url_is_not_shown(server):
    from engine.prompting.llm_http import HttpLLMConfig, HttpLLMRefiner
    from engine.prompting.llm_json import BackendError

    server.script([send(404, b"{}")])
    url = server.url.replace("http://", "http://user:hunter2@") + "/v1"
    with pytest.raises(BackendError) as info:
        HttpLLMRefiner(HttpLLMConfig(base_url=url, timeout=2, retries=0)).refine("red lips")
    assert "hunter2" not in str(info.value) and server.url.removeprefix("http://") in str(info.value)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS stand-in with a self-signed certificate that no trust store holds."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = StandIn()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.url = server.url.replace("http://", "https://")
    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    yield server
    server.httpd.shutdown()


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_an_untrusted_certificate_is_refused_before_anything_is_sent(tls_server, kind):
    good = _chat(json.dumps(PLAN)) if kind == "refiner" else _image_answer(png())
    outcome = RUNS[kind](tls_server, [send(200, good)])
    assert outcome.kind == "refused", outcome.detail
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    assert tls_server.paths == []  # no request (and no key) ever reached the server
