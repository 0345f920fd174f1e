"""Optional LLM backend for order-swapped negative captions.

The rule-based backend (tclap.data.negatives) only swaps captions whose
connectives it can parse. An LLM rewrites the free-form rest, but it also
invents sounds, repeats the input or rambles, so every answer is checked by
`validate_negative` before it is used: same content words, different order.
Validated answers (and definite "no sequence" answers) go into a SQLite cache
so a rerun or a second backend instance never asks twice.

Two clients speak to the model: an OpenAI-compatible HTTP server (vLLM,
llama.cpp server, Ollama) through the standard library only, or a local
transformers checkpoint.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable, Protocol

from tclap.data.negatives import Negative

# Bump when the prompt changes: cached answers are keyed by it.
PROMPT_VERSION = "order-swap-v1"

# Words that carry no sound content: articles, auxiliaries, prepositions and the
# temporal connectives a swap is allowed to move, add or drop. Everything else
# must appear in the answer exactly as often as in the caption.
FUNCTION_WORDS = frozenset(
    """
    a an the some another this that
    and or but also as while whilst when once until during meanwhile
    is are was were be been being it its there
    of in on at to into onto from with by for over
    then followed follows following follow after afterwards afterward before
    first firstly next later finally subsequently preceded precedes precede
    eventually soon shortly
    """.split()
)

# An answer may add connectives, but not more than this many words per caption word.
MAX_LENGTH_RATIO = 2

NO_SEQUENCE_ANSWER = "NONE"

SYSTEM_PROMPT = (
    "You rewrite audio captions for a study of temporal order. Given a caption that "
    "describes sound events happening one after another, write a caption with the "
    "same sound events in a different temporal order. Use exactly the same words for "
    "every sound: do not add, remove, rename or describe any sound differently; only "
    "reorder the events and adjust connective words such as 'then', 'followed by', "
    "'before' and 'after'. Answer with the new caption only. If the caption does not "
    "describe a sequence of distinct events (one sound, or sounds happening at the "
    f"same time), answer with the single word {NO_SEQUENCE_ANSWER}."
)

FEW_SHOT_EXAMPLES = (
    ("A dog barks, then a man speaks.", "A man speaks, then a dog barks."),
    (
        "Footsteps approach, a door slams, then a woman screams.",
        "A woman screams, a door slams, then footsteps approach.",
    ),
    ("Rain falls steadily while thunder rumbles in the distance.", NO_SEQUENCE_ANSWER),
)

_ANSWER_LABEL = re.compile(
    r"^(?:negative|answer|output|caption|new caption|swapped caption|rewritten caption)\s*:\s*",
    re.IGNORECASE,
)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_QUOTES = "\"'`“”‘’"


def _words(text: str) -> list[str]:
    """Lowercase word tokens, apostrophes kept inside words ("dog's")."""
    tokens = re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))
    return [t.strip("'") for t in tokens if t.strip("'")]


def _content_words(text: str) -> list[str]:
    return [w for w in _words(text) if w not in FUNCTION_WORDS]


def _format_words(words: Counter) -> str:
    return "{" + ", ".join(sorted(words.elements())) + "}"


def validate_negative(caption: str, candidate: str) -> str | None:
    """Say why an LLM answer is not a valid order-swapped negative, or None if it is.

    The check is lexical on purpose: an answer with exactly the caption's content
    words in a different order cannot have invented or dropped a sound event.

    Args:
        caption: the original caption.
        candidate: the LLM's (cleaned) answer.

    Returns:
        A short rejection reason, or None when the candidate is acceptable.
    """
    candidate_words = _words(candidate)
    if not candidate_words:
        return "empty answer"
    caption_words = _words(caption)
    if len(candidate_words) > MAX_LENGTH_RATIO * max(len(caption_words), 1):
        return f"too long: {len(candidate_words)} words for a {len(caption_words)}-word caption"
    if candidate_words == caption_words:
        return "identical to input"
    caption_content = _content_words(caption)
    candidate_content = _content_words(candidate)
    missing = Counter(caption_content) - Counter(candidate_content)
    extra = Counter(candidate_content) - Counter(caption_content)
    if missing or extra:
        return f"content words differ: missing {_format_words(missing)}, extra {_format_words(extra)}"
    if candidate_content == caption_content:
        return "same order"
    return None


def build_messages(caption: str) -> list[dict]:
    """Chat messages asking for `caption` with its events in another order.

    Few-shot examples go in as earlier user/assistant turns, which small
    instruction-tuned models follow more reliably than examples inside the
    system text.

    Args:
        caption: the caption to rewrite.
    """
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for example, answer in FEW_SHOT_EXAMPLES:
        messages.append({"role": "user", "content": example})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": caption})
    return messages


def clean_answer(text: str) -> str:
    """The caption inside an LLM answer: no reasoning block, label, quotes or extra lines.

    Args:
        text: the raw completion.
    """
    text = _THINK_BLOCK.sub("", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    answer = _ANSWER_LABEL.sub("", lines[0]).strip()
    return answer.strip(_QUOTES).strip()


def is_no_sequence(answer: str) -> bool:
    """True when the model said the caption has no sequence to swap."""
    return answer.rstrip(".").strip().upper() == NO_SEQUENCE_ANSWER


class LLMRequestError(RuntimeError):
    """A request to the model failed. `retryable` is True for 429, 5xx, timeouts and dropped connections."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class ChatClient(Protocol):
    """Anything that turns chat messages into one completion; `model_id` keys the cache."""

    model_id: str

    def complete(self, messages: list[dict]) -> str: ...


class OpenAIChatClient:
    """Client for an OpenAI-compatible /chat/completions endpoint, standard library only.

    Args:
        base_url: server root including the API prefix, e.g. "http://127.0.0.1:8000/v1".
        model: model name the server expects; also the cache key.
        api_key: sent as a Bearer token when given.
        timeout: seconds per request.
        temperature: sampling temperature; 0 keeps answers reproducible.
        max_tokens: completion length cap; captions are short.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30,
        temperature: float = 0.0,
        max_tokens: int = 128,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_id = model
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens

    def complete(self, messages: list[dict]) -> str:
        """POST the messages and return the first choice's text.

        Args:
            messages: chat messages, each {"role": ..., "content": ...}.

        Raises:
            LLMRequestError: on an HTTP error, timeout, lost connection or malformed reply.
        """
        body = {
            "model": self.model_id,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            excerpt = error.read()[:300].decode(errors="replace")
            retryable = error.code == 429 or error.code >= 500
            raise LLMRequestError(f"POST {self.url}: HTTP {error.code}: {excerpt}", retryable) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise LLMRequestError(f"POST {self.url}: {reason!r}", retryable=True) from error
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            excerpt = payload[:300].decode(errors="replace")
            raise LLMRequestError(f"POST {self.url}: malformed reply: {excerpt}", retryable=False) from error
        return content or ""


class LocalCausalLMClient:
    """Client for a transformers causal LM saved in a local directory; nothing is downloaded.

    Args:
        model_path: directory holding the model and tokenizer (save_pretrained layout).
        device: torch device to run on.
        max_new_tokens: completion length cap; captions are short.
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", max_new_tokens: int = 96):
        # Imported here: transformers is heavy and only this optional client needs it.
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = str(Path(model_path).resolve())
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True)
        self.model.to(device).eval()

    def _encode(self, messages: list[dict]) -> dict:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
            )
        # A base model without a chat template gets a plain transcript to continue.
        transcript = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return self.tokenizer(transcript, return_tensors="pt")

    def complete(self, messages: list[dict]) -> str:
        """Greedy-decode a reply and return only the newly generated text.

        Args:
            messages: chat messages, each {"role": ..., "content": ...}.
        """
        import torch

        inputs = {k: v.to(self.device) for k, v in self._encode(messages).items()}
        pad_token_id = self.tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = self.tokenizer.eos_token_id
        with torch.no_grad():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=pad_token_id,
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True)


class RateLimiter:
    """Spaces calls at least 1/requests_per_second apart, across threads.

    Each caller reserves the next free slot under a lock and sleeps outside it,
    so concurrent callers queue up instead of bursting.

    Args:
        requests_per_second: the maximum request rate.
        sleep: the sleep function (injectable for tests).
        clock: the monotonic clock (injectable for tests).
    """

    def __init__(self, requests_per_second: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be positive, got {requests_per_second}")
        self.interval = 1.0 / requests_per_second
        self.sleep, self.clock = sleep, clock
        self._next_slot = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller may send its request."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


class AnswerCache:
    """SQLite store of accepted answers keyed by (model id, prompt version, caption).

    Only validated negatives and definite NONE answers are stored, so a caption
    the model failed on is asked again on the next run.

    Args:
        path: the SQLite file; created if missing.
        model_id: the model the answers came from.
    """

    def __init__(self, path: Path, model_id: str):
        self.model_id = model_id
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (model TEXT, prompt_version TEXT, caption TEXT,"
            " answer TEXT NOT NULL, PRIMARY KEY (model, prompt_version, caption))"
        )
        self._db.commit()

    def get(self, caption: str) -> str | None:
        """The stored answer for `caption`, or None on a miss."""
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM answers WHERE model = ? AND prompt_version = ? AND caption = ?",
                (self.model_id, PROMPT_VERSION, caption),
            ).fetchone()
        return row[0] if row else None

    def put(self, caption: str, answer: str) -> None:
        """Store an accepted answer (a negative caption or NONE); committed at once."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                (self.model_id, PROMPT_VERSION, caption, answer),
            )
            self._db.commit()


class LLMBackend:
    """Negative-caption backend that asks an LLM and keeps only validated answers.

    Args:
        client: the model client (OpenAIChatClient, LocalCausalLMClient, ...).
        cache_path: SQLite answer cache; None disables caching.
        max_retries: extra attempts after a rejected answer or a retryable request error.
        requests_per_second: request rate cap; None for no cap.
        name: backend name recorded by the driver.
        backoff_s: first wait after a retryable request error; doubles on each retry.
        sleep: the sleep function (injectable for tests).
        clock: the rate limiter's monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        client: ChatClient,
        cache_path: Path | None = None,
        max_retries: int = 3,
        requests_per_second: float | None = None,
        name: str = "llm",
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.cache = AnswerCache(cache_path, client.model_id) if cache_path is not None else None
        self.max_retries = max_retries
        self.limiter = RateLimiter(requests_per_second, sleep, clock) if requests_per_second else None
        self.name = name
        self.backoff_s = backoff_s
        self.sleep = sleep

    def __call__(self, captions: list[str]) -> list[Negative]:
        """One Negative per caption, in input order.

        Args:
            captions: the captions to rewrite.

        Raises:
            LLMRequestError: on a request error that retrying cannot fix (e.g. HTTP 401/404).
        """
        return [self._negative(caption) for caption in captions]

    def _negative(self, caption: str) -> Negative:
        answer = self.cache.get(caption) if self.cache else None
        if answer is None:
            answer, reason = self._ask(caption)
            if answer is None:
                return Negative(caption, None, f"llm rejected: {reason}", ())
            if self.cache:
                self.cache.put(caption, answer)
        if is_no_sequence(answer):
            return Negative(caption, None, "llm: no sequence", ())
        return Negative(caption, answer, None, ())

    def _ask(self, caption: str) -> tuple[str | None, str]:
        """Query until an answer passes validation; returns (answer or None, last reason)."""
        messages = build_messages(caption)
        reason, request_error = "", None
        for attempt in range(1 + self.max_retries):
            if self.limiter:
                self.limiter.wait()
            try:
                raw = self.client.complete(messages)
            except LLMRequestError as error:
                if not error.retryable:
                    raise
                request_error = error
                if attempt < self.max_retries:
                    self.sleep(self.backoff_s * 2**attempt)
                continue
            request_error = None
            answer = clean_answer(raw)
            if is_no_sequence(answer):
                return NO_SEQUENCE_ANSWER, ""
            reason = validate_negative(caption, answer)
            if reason is None:
                return answer, ""
            messages = messages + [
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": f"That answer was rejected ({reason}). Rewrite this caption "
                    f"again, following the rules: {caption}",
                },
            ]
        if request_error is not None:  # the server, not the answer, failed: stop, so a rerun retries
            raise request_error
        return None, reason
