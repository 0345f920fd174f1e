"""Tests for the LLM negative-caption backend, against a real loopback HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tclap.data.llm_negatives import (
    FEW_SHOT_EXAMPLES,
    SYSTEM_PROMPT,
    LLMBackend,
    LLMRequestError,
    LocalCausalLMClient,
    OpenAIChatClient,
    RateLimiter,
    build_messages,
    clean_answer,
    validate_negative,
)
from tclap.data.negatives import Negative

# ---------------------------------------------------------------- validate_negative


@pytest.mark.parametrize(
    "caption, candidate",
    [
        ("A dog barks, then a man speaks.", "A man speaks, then a dog barks."),
        ("A dog barks, then a man speaks.", "a man speaks and after that a dog barks"),
        ("Birds chirp followed by a car passing by", "A car passing by, then birds chirp"),
        (
            "Footsteps approach, a door slams, then a woman screams.",
            "A woman screams, a door slams, then footsteps approach.",
        ),
        ("A dog's bark, then a bell rings", "A bell rings before a dog’s bark"),
    ],
)
def test_validate_accepts_reordered_same_words(caption, candidate):
    assert validate_negative(caption, candidate) is None


@pytest.mark.parametrize(
    "caption, candidate, reason",
    [
        ("A dog barks, then a man speaks.", "", "empty answer"),
        ("A dog barks, then a man speaks.", "  ... ", "empty answer"),
        ("A dog barks, then a man speaks.", "a DOG barks  then a man speaks", "identical to input"),
        (
            "A dog barks, then a man speaks.",
            "A man speaks, then a cat barks.",
            "content words differ: missing {dog}, extra {cat}",
        ),
        (
            "A dog barks, then a man speaks.",
            "A man speaks loudly, then a dog barks.",
            "content words differ: missing {}, extra {loudly}",
        ),
        (
            "A dog barks twice, then a dog barks.",
            "A dog barks, then a dog barks.",
            "content words differ: missing {twice}, extra {}",
        ),
        (
            "A dog barks, then a man speaks.",
            "First a dog barks and afterwards a man speaks.",
            "same order",
        ),
        (
            "A dog barks, then a man speaks.",
            "a man speaks then a dog barks " + "and then " * 6,
            "too long: 19 words for a 7-word caption",
        ),
    ],
)
def test_validate_rejects_with_reason(caption, candidate, reason):
    assert validate_negative(caption, candidate) == reason


def test_validate_counts_repeated_words():
    caption = "A dog barks, then a dog barks and a man speaks"
    assert validate_negative(caption, "A man speaks, then a dog barks and a dog barks") is None
    assert validate_negative(caption, "A man speaks, then a dog barks") == (
        "content words differ: missing {barks, dog}, extra {}"
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('"A man speaks, then a dog barks."', "A man speaks, then a dog barks."),
        ("Negative: A man speaks, then a dog barks.", "A man speaks, then a dog barks."),
        ("Swapped caption: 'A man speaks.'", "A man speaks."),
        ("\n\nA man speaks.\nThis swaps the two events.", "A man speaks."),
        ("<think>\nswap them\n</think>\nA man speaks.", "A man speaks."),
        ("   ", ""),
    ],
)
def test_clean_answer(raw, expected):
    assert clean_answer(raw) == expected


def test_few_shot_examples_pass_validation():
    # The prompt's own examples must be answers the validator accepts.
    for caption, answer in FEW_SHOT_EXAMPLES:
        assert answer == "NONE" or validate_negative(caption, answer) is None


def test_build_messages_ends_with_caption_after_few_shots():
    messages = build_messages("a cat meows, then a door closes")
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(FEW_SHOT_EXAMPLES) + ["user"]
    assert messages[-1]["content"] == "a cat meows, then a door closes"


# ---------------------------------------------------------------- scripted server


@dataclass
class Seen:
    headers: dict
    body: dict


@dataclass
class ScriptedServer:
    """OpenAI-compatible server answering each caption from a list of (status, text) replies.

    The caption is found as a script key inside any request message (few-shot
    captions never match). Replies are used in order; the last one repeats.
    """

    script: dict[str, list[tuple[int, str]]]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def reply_for(self, body: dict) -> tuple[int, str]:
        text = " ".join(m["content"] for m in body["messages"])
        (caption,) = [c for c in self.script if c in text]
        replies = self.script[caption]
        return replies.pop(0) if len(replies) > 1 else replies[0]


@pytest.fixture
def server():
    holder: dict[str, ScriptedServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            scripted = holder["server"]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            scripted.seen.append(Seen(dict(self.headers), body))
            if self.path != "/v1/chat/completions":
                status, text = 404, "no such route"
            else:
                status, text = scripted.reply_for(body)
            if status == SLOW:
                time.sleep(0.3)
                status = 200
            if status == 200:
                reply = {"choices": [{"message": {"role": "assistant", "content": text}}]}
                payload = json.dumps(reply).encode()
            else:
                payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def start(script: dict[str, list[tuple[int, str]]]) -> ScriptedServer:
        holder["server"] = ScriptedServer(script, url=f"http://127.0.0.1:{httpd.server_port}/v1")
        return holder["server"]

    yield start
    httpd.shutdown()
    httpd.server_close()


SLOW = 0  # scripted status: answer 200, but only after 0.3 s
GOOD = "a cat meows, then a door closes"
GOOD_SWAP = "A door closes, then a cat meows."
ECHO = "a bell rings, then a baby cries"
ECHO_SWAP = "a baby cries, then a bell rings"
INVENTED = "a phone rings, then water splashes"
NO_SEQUENCE = "wind blows through the trees"
FLAKY = "a horn honks, then a car passes"
FLAKY_SWAP = "a car passes, then a horn honks"
THROTTLED = "a drill whirs, then a hammer knocks"
THROTTLED_SWAP = "a hammer knocks, then a drill whirs"
BROKEN = "a man coughs, then a woman laughs"

SCRIPT = {
    GOOD: [(200, GOOD_SWAP)],
    ECHO: [(200, ECHO), (200, f"Negative: {ECHO_SWAP}")],
    INVENTED: [(200, "water splashes, then a phone rings and a dog barks")],
    NO_SEQUENCE: [(200, "NONE")],
    FLAKY: [(500, "upstream crashed"), (200, FLAKY_SWAP)],
    THROTTLED: [(429, "slow down"), (200, THROTTLED_SWAP)],
    BROKEN: [(503, "overloaded")],
}


def fresh_script() -> dict[str, list[tuple[int, str]]]:
    return {caption: list(replies) for caption, replies in SCRIPT.items()}


def requests_for(seen: list[Seen], caption: str) -> list[Seen]:
    return [s for s in seen if caption in s.body["messages"][-1]["content"]]


def make_backend(url: str, cache_path=None, model: str = "tiny-chat", sleeps=None) -> LLMBackend:
    sleeps = [] if sleeps is None else sleeps
    return LLMBackend(
        OpenAIChatClient(url, model), cache_path=cache_path, max_retries=2, sleep=sleeps.append
    )


def test_backend_results_retries_and_reasons(server):
    scripted = server(fresh_script())
    sleeps: list[float] = []
    captions = [GOOD, ECHO, INVENTED, NO_SEQUENCE, FLAKY, THROTTLED]

    results = make_backend(scripted.url, sleeps=sleeps)(captions)

    assert results == [
        Negative(GOOD, GOOD_SWAP, None, ()),
        Negative(ECHO, ECHO_SWAP, None, ()),
        Negative(
            INVENTED,
            None,
            "llm rejected: content words differ: missing {}, extra {barks, dog}",
            (),
        ),
        Negative(NO_SEQUENCE, None, "llm: no sequence", ()),
        Negative(FLAKY, FLAKY_SWAP, None, ()),
        Negative(THROTTLED, THROTTLED_SWAP, None, ()),
    ]
    # 1 + 2 + 3 (rejected, never accepted) + 1 + 2 + 2.
    assert len(scripted.seen) == 11
    assert len(requests_for(scripted.seen, INVENTED)) == 3
    # Backoff only after request errors: FLAKY and THROTTLED once each.
    assert sleeps == [0.5, 0.5]


def test_a_server_that_stays_down_stops_the_run_after_retries(server):
    # Writing such rows as "rejected" would lose them: a rerun skips rows already written.
    scripted = server(fresh_script())
    sleeps: list[float] = []
    with pytest.raises(LLMRequestError, match="HTTP 503: overloaded"):
        make_backend(scripted.url, sleeps=sleeps)([BROKEN])
    assert len(requests_for(scripted.seen, BROKEN)) == 3
    assert sleeps == [0.5, 1.0]  # doubling, none after the last attempt


def test_rejected_answer_is_fed_back(server):
    scripted = server(fresh_script())
    make_backend(scripted.url)([ECHO])

    first, second = scripted.seen
    assert first.body["messages"] == build_messages(ECHO)
    retry = second.body["messages"]
    assert retry[: len(first.body["messages"])] == first.body["messages"]
    assert retry[-2] == {"role": "assistant", "content": ECHO}
    assert retry[-1]["role"] == "user"
    assert "identical to input" in retry[-1]["content"] and ECHO in retry[-1]["content"]


def test_request_body_and_auth_header(server):
    scripted = server(fresh_script())
    client = OpenAIChatClient(scripted.url, "tiny-chat", api_key="sk-test", max_tokens=40)

    assert client.complete(build_messages(GOOD)) == GOOD_SWAP

    (seen,) = scripted.seen
    assert seen.headers["Authorization"] == "Bearer sk-test"
    assert seen.body == {
        "model": "tiny-chat",
        "messages": build_messages(GOOD),
        "temperature": 0.0,
        "max_tokens": 40,
    }


def test_no_auth_header_without_key(server):
    scripted = server(fresh_script())
    OpenAIChatClient(scripted.url, "tiny-chat").complete(build_messages(GOOD))
    assert "Authorization" not in scripted.seen[0].headers


def test_http_errors_carry_status_body_and_retryability(server):
    scripted = server(fresh_script())
    client = OpenAIChatClient(scripted.url, "tiny-chat")

    with pytest.raises(LLMRequestError, match="HTTP 503: overloaded") as error:
        client.complete(build_messages(BROKEN))
    assert error.value.retryable

    missing = OpenAIChatClient(scripted.url.removesuffix("/v1"), "tiny-chat")
    with pytest.raises(LLMRequestError, match="HTTP 404: no such route") as error:
        missing.complete(build_messages(GOOD))
    assert not error.value.retryable


def test_backend_raises_on_non_retryable_error(server):
    # A wrong URL or key must stop the run, not fill the output with rejected rows.
    scripted = server(fresh_script())
    backend = make_backend(scripted.url.removesuffix("/v1"))
    with pytest.raises(LLMRequestError, match="HTTP 404"):
        backend([GOOD])
    assert len(scripted.seen) == 1


def test_unreachable_server_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIChatClient(f"http://127.0.0.1:{port}/v1", "tiny-chat", timeout=2)
    with pytest.raises(LLMRequestError) as error:
        client.complete(build_messages(GOOD))
    assert error.value.retryable


def test_timeout_is_retryable(server):
    scripted = server({GOOD: [(SLOW, GOOD_SWAP)]})
    client = OpenAIChatClient(scripted.url, "tiny-chat", timeout=0.05)
    with pytest.raises(LLMRequestError) as error:
        client.complete(build_messages(GOOD))
    assert error.value.retryable


def test_cache_answers_second_backend_without_requests(server, tmp_path):
    scripted = server(fresh_script())
    cache = tmp_path / "answers.sqlite"
    captions = [GOOD, ECHO, NO_SEQUENCE, INVENTED]

    first = make_backend(scripted.url, cache)(captions)
    sent_first = len(scripted.seen)
    second = make_backend(scripted.url, cache)(captions)

    assert second == first
    # Accepted answers and NONE are cached; only the rejected caption is asked again.
    asked_again = scripted.seen[sent_first:]
    assert len(asked_again) == 3
    assert all(INVENTED in s.body["messages"][-1]["content"] for s in asked_again)


def test_cache_is_keyed_by_model(server, tmp_path):
    scripted = server(fresh_script())
    cache = tmp_path / "answers.sqlite"
    make_backend(scripted.url, cache, model="model-a")([GOOD])
    make_backend(scripted.url, cache, model="model-b")([GOOD])
    assert [s.body["model"] for s in scripted.seen] == ["model-a", "model-b"]


def test_rate_limit_spaces_requests(server):
    """The backend's requests go through its limiter: on an injected clock that only sleeping moves,
    the five sends are one interval (50 ms) apart, however long the real server takes."""
    captions = [f"a clock ticks {i} times, then a bird sings" for i in range(5)]
    swaps = [f"a bird sings, then a clock ticks {i} times" for i in range(5)]
    scripted = server({c: [(200, swap)] for c, swap in zip(captions, swaps)})
    now, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    backend = LLMBackend(OpenAIChatClient(scripted.url, "tiny-chat"), requests_per_second=20, sleep=sleep,
                         clock=lambda: now[0])
    results = backend(captions)

    assert [r.negative for r in results] == swaps and len(scripted.seen) == 5
    assert sleeps == pytest.approx([0.05] * 4)


def test_rate_limiter_slots_are_one_interval_apart():
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(requests_per_second=20, sleep=sleep, clock=lambda: now[0])
    sent = []
    for _ in range(5):
        limiter.wait()
        sent.append(now[0])
        now[0] += 0.003  # the request itself takes 3 ms
    assert [round(b - a, 9) for a, b in zip(sent, sent[1:])] == [0.05] * 4


def test_rate_limiter_gives_concurrent_callers_separate_slots():
    sleeps: list[float] = []
    limiter = RateLimiter(requests_per_second=1, sleep=sleeps.append, clock=lambda: 0.0)  # all call at t = 0
    threads = [threading.Thread(target=limiter.wait) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The first caller goes at once; the others are queued 1 s, 2 s and 3 s later.
    assert sorted(sleeps) == [1.0, 2.0, 3.0]


# ---------------------------------------------------------------- local transformers model

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def save_tiny_causal_lm(path, chat_template: str | None) -> None:
    """A randomly initialised 1-layer GPT-2 with a byte-level BPE tokenizer trained offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(["a dog barks, then a man speaks"], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")
    tokenizer.chat_template = chat_template
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=4096, n_embd=16, n_layer=1, n_head=2,
        bos_token_id=eos, eos_token_id=eos,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.mark.parametrize("chat_template", [CHAT_TEMPLATE, None])
def test_local_model_answer_goes_through_validation(tmp_path, chat_template):
    save_tiny_causal_lm(tmp_path, chat_template)
    client = LocalCausalLMClient(tmp_path, max_new_tokens=8)

    answer = client.complete(build_messages(GOOD))
    assert isinstance(answer, str)
    # Only the continuation comes back, not the prompt.
    assert GOOD not in answer and "assistant:" not in answer

    (result,) = LLMBackend(client, max_retries=1)([GOOD])
    assert result.caption == GOOD and result.negative is None
    assert result.reason.startswith("llm rejected: ")
