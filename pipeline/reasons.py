"""Every reason code ftprep can give a rejected record, with what it means and what to do.

Reason codes are a public API: stable, snake_case, documented in docs/reasons.md (generated
from this table by `python -m pipeline.reasons > docs/reasons.md`). Marking a record with a
code that is not in this table is a bug and fails loudly.
"""

from __future__ import annotations

# code -> (stage that gives it, meaning and what to change)
REASONS: dict[str, tuple[str, str]] = {
    "json_invalid": (
        "read",
        "A JSONL line is not valid JSON; the message has the parser's column and problem. "
        "Fix or remove the line.",
    ),
    "record_not_object": (
        "read",
        "A JSONL line or JSON array element is valid JSON but not an object (a list, text or "
        "number).",
    ),
    "row_malformed": (
        "read",
        "A CSV/TSV row has more or fewer fields than the header (often a missing tab), or its "
        "quoting is broken (a quoted field never closed, text after a closing quote), or an "
        "XLSX row has values past the header's last column. The row is rejected whole rather "
        "than read with shifted columns.",
    ),
    "encoding_invalid": (
        "read",
        "The record holds bytes that do not decode in its file's encoding (invalid UTF-8 in an "
        "otherwise UTF-8 file, or in the encoding detected or set); the message has the line "
        "and the byte offset of the first one. Fix the bytes, or set "
        "`input.encoding_errors: replace` to keep the record with U+FFFD in their place.",
    ),
    "record_too_large": (
        "read",
        "A JSONL line, CSV/TSV line or field, or XLSX cell is longer than "
        "`input.limits.max_record_bytes` (16 MiB); it is not read into memory. Split or "
        "shorten it, or raise the limit.",
    ),
    "json_too_deep": (
        "read",
        "A JSON or JSONL record nests objects and arrays deeper than "
        "`input.limits.max_json_depth` (64). Flatten it, or raise the limit (at most 200).",
    ),
    "shape_invalid": (
        "read",
        "A record does not fit its file's shape: a ShareGPT `conversations` that is not a list "
        "of {from, value}, a `tools` string that is not JSON, an alpaca `history` that is not a "
        "list of pairs.",
    ),
    "record_unserializable": (
        "write",
        "A kept record holds a value JSON cannot represent (e.g. an integer past 64 bits).",
    ),
    "field_missing": (
        "require_fields",
        "A required field is absent or null. Fill it in the source, or map another column to "
        "it with input.columns.",
    ),
    "field_empty": (
        "require_fields",
        "A required field is empty or only whitespace (an empty list for messages).",
    ),
    # --- validate_schema (add its codes below this line) ---
    "format_unsupported": (
        "validate_schema",
        "The record's kind (chat, prompt_completion, preference) is not a format the target takes. Choose a target that takes it, or convert the data first.",
    ),
    "schema_version_missing": (
        "validate_schema",
        "A Bedrock conversation line without `schemaVersion` (`\"schemaVersion\": \"bedrock-conversation-2024\"` opens every line). Add it, or convert the file with `ftprep convert FILE --to bedrock`.",
    ),
    "top_level_key_unknown": (
        "validate_schema",
        "A top-level key the target does not take: an extra key in a JSON/JSONL source record (OpenAI refuses the file, e.g. a top-level `weight`), or `tools`/`functions` for a target without them. Remove it. For an extra key of a source record this is the code only with `extra_keys: reject` and in `ftprep check`: by default a run keeps the record and leaves the key out of the output (`top_level_key_dropped` in the report's fixes).",
    ),
    "tools_invalid": (
        "validate_schema",
        "`tools` is not a list of `{type: function, function: {name, description?, parameters?}}`, or `parallel_tool_calls` is not true/false.",
    ),
    "functions_invalid": (
        "validate_schema",
        "The legacy `functions` is not a list of `{name, description?, parameters?}`.",
    ),
    "function_name_invalid": (
        "validate_schema",
        "A tool or function name outside `^[a-zA-Z0-9_-]{1,64}$`.",
    ),
    "messages_not_list": (
        "validate_schema",
        "`messages` is missing, null, an empty list or not a list (the cookbook's `missing_messages_list`).",
    ),
    "message_not_object": (
        "validate_schema",
        "A message is not an object `{role, content}`.",
    ),
    "message_missing_key": (
        "validate_schema",
        "A message lacks `role`, or a key its role needs: `content` (system, user, tool, function), `tool_call_id` (tool), `name` (function).",
    ),
    "message_unknown_key": (
        "validate_schema",
        "A message key the target does not take for that role (e.g. `loss_weight`, `weight` on a user message, `tool_calls` for a target without tools).",
    ),
    "role_unknown": (
        "validate_schema",
        "A role the target does not take, e.g. `developer` for OpenAI SFT, or `human`/`gpt` left unmapped.",
    ),
    "role_order": (
        "validate_schema",
        "The target's role-order rule is broken: Bedrock wants user first, user/assistant alternating, assistant last; Together wants system or user first then alternation; Fireworks, Bedrock and Vertex take a system message only at the start; ShareGPT wants human/observation at odd and gpt/function_call at even turns.",
    ),
    "content_missing": (
        "validate_schema",
        "Content is null where text is needed: an assistant message with no content, tool_calls or function_call, or a null system/user/tool content.",
    ),
    "content_empty": (
        "validate_schema",
        "An empty or whitespace-only text: a message content (all text parts blank) or a completion.",
    ),
    "content_invalid": (
        "validate_schema",
        "Content is neither text nor a non-empty list of parts (a number, an object, an empty list); or a function message with parts.",
    ),
    "content_part_invalid": (
        "validate_schema",
        "A content part is not `{type, ...}` with what its type needs: `{type: text, text}` (not `value`), `{type: image_url, image_url: {url}}`, `{type: refusal, refusal}`.",
    ),
    "content_type_unsupported": (
        "validate_schema",
        "A content part type the target does not take, a refusal part outside assistant messages, or a non-text part in preference (DPO) data.",
    ),
    "image_unsupported": (
        "validate_schema",
        "An image part for a target without vision fine-tuning.",
    ),
    "image_not_user": (
        "validate_schema",
        "An image part in a system, assistant or tool message; images go only in user messages.",
    ),
    "too_many_images": (
        "validate_schema",
        "More images in one example than the target allows (OpenAI 10, Azure 64, Bedrock 10, Vertex 30).",
    ),
    "image_too_large": (
        "validate_schema",
        "A base64 data-URL image larger than the target's per-image limit (10 MB for OpenAI).",
    ),
    "image_invalid": (
        "validate_schema",
        "An image URL that is neither http(s) nor a base64 data URL, or a data URL that is not JPEG, PNG or WEBP.",
    ),
    "name_invalid": (
        "validate_schema",
        "A message `name` that is not `^[a-zA-Z0-9_-]{1,64}$`.",
    ),
    "tool_call_invalid": (
        "validate_schema",
        "`tool_calls` is not a non-empty list of `{id, type: function, function: {name, arguments}}`, or an id repeats.",
    ),
    "function_call_invalid": (
        "validate_schema",
        "A legacy assistant `function_call` that is not `{name, arguments}`.",
    ),
    "arguments_invalid": (
        "validate_schema",
        "Tool-call or function-call `arguments` that are not a JSON string of an object: not valid JSON, JSON that is not an object, or an object where the target (OpenAI, Azure, Fireworks, Together, Mistral) takes a JSON-encoded string.",
    ),
    "function_unknown": (
        "validate_schema",
        "A tool call or function call names a function that the record's `tools`/`functions` do not define.",
    ),
    "tool_response_orphan": (
        "validate_schema",
        "A `tool` message whose `tool_call_id` answers no earlier assistant tool call (or answers one twice); e.g. a ShareGPT observation after a plain gpt turn.",
    ),
    "weight_invalid": (
        "validate_schema",
        "An assistant `weight` other than the integers 0 and 1.",
    ),
    "assistant_missing": (
        "validate_schema",
        "A chat record without an assistant message: nothing to train on (the cookbook's `example_missing_assistant_message`).",
    ),
    "prompt_invalid": (
        "validate_schema",
        "The prompt is not text (e.g. a list or null).",
    ),
    "completion_invalid": (
        "validate_schema",
        "The completion is not text (e.g. a list or null).",
    ),
    "input_invalid": (
        "validate_schema",
        "A preference `input` that is not `{messages: [non-empty list], tools?, parallel_tool_calls?}`.",
    ),
    "preference_output_invalid": (
        "validate_schema",
        "`preferred_output` / `non_preferred_output` is not a list of exactly one assistant message with text content (no tool calls).",
    ),
    # --- legacy_format and convert (add their codes below this line) ---
    "conversion_lossy": (
        "convert",
        "The output shape has no place for something the record holds (a system message in "
        "the middle, a weight-0 turn, an image part, tools in prompt/completion, the rejected "
        "answer of a preference pair or the label of a KTO example in a chat shape ...). The "
        "message names the field; choose another shape, fix the record, or choose the loss "
        "(`--preference chosen`, `--kto desirable`).",
    ),
    "kto_undesirable": (
        "convert",
        "An undesirable KTO example (label false) left out when converting to a shape without "
        "labels with `--kto desirable` (`kto: desirable`): it must never become a training "
        "target. The loss was chosen, so `ftprep convert` still exits 0 for it.",
    ),
    "conversion_unsupported": (
        "convert",
        "The output shape cannot express this kind of record (a chat record as TRL "
        "preference, tools in Bedrock's conversation format ...).",
    ),
    "separator_in_prompt": (
        "legacy_format",
        "The prompt contains the configured separator somewhere other than at its end, so the model would see the end of the prompt too early. Choose a separator that occurs in no prompt.",
    ),
    "separator_mismatch": (
        "legacy_format",
        "The prompt already ends with a different common separator (e.g. `\\n\\n###\\n` when `\\n\\n###\\n\\n` is configured); adding ours would give two. Set `separator:` to the one the data uses.",
    ),
    "stop_in_completion": (
        "legacy_format",
        "The completion contains the configured stop sequence before its end, so generation would stop there. Choose a stop sequence that occurs in no completion.",
    ),
    "stop_mismatch": (
        "legacy_format",
        "The completion already ends with a different stop marker (`END`, `***`, `[END]`, ...). Set `stop:` to the ending the data uses.",
    ),
    # --- count_tokens and token_limit (add their codes below this line) ---
    "too_many_tokens": (
        "token_limit",
        "The example has more tokens than the target allows per example "
        "(`max_tokens_per_example`, or the stage's `max_tokens`), and `over_limit` is `reject`, "
        "or it cannot be truncated: the prompt side of a prompt/completion pair, a preference "
        "pair, or a last message too short or not plain text. Shorten it or split it into "
        "several examples.",
    ),
    # --- scan_sensitive (add its codes below this line) ---
    "secret_found": (
        "scan_sensitive",
        "A text of the record holds a secret: an OpenAI, Anthropic, Google API or AWS access "
        "key, a GitHub or Slack token, a private key, a JWT, or a password in a connection "
        "string. The message names each kind and field path (never the whole secret). Remove "
        "or rotate it, or set `secrets: redact` to replace it with a placeholder.",
    ),
    "pii_found": (
        "scan_sensitive",
        "With `pii: reject` (or a PII kind's action `reject`): a text of the record holds an "
        "email address, a phone number, a Chinese resident ID number (valid check digit), a "
        "credit-card number (valid Luhn check) or a public IP address. The message names each "
        "kind and field path. Remove it, or use `redact`.",
    ),
    # --- dedupe and split (add their codes below this line) ---
    "duplicate": (
        "dedupe",
        "The record has the same content as an earlier one (`mode: exact`: the fields trained "
        "on, byte for byte; `mode: normalized`: after NFKC, case folding, punctuation and "
        "whitespace normalisation; or the same `subset` fields and the same content). The "
        "message names the source and line of the record kept. Nothing to fix: the first "
        "occurrence is kept.",
    ),
    "near_duplicate": (
        "dedupe",
        "`mode: near`: the record is in a cluster of near duplicates (MinHash estimated "
        "Jaccard similarity of the shingles at or above `threshold`) whose first record in "
        "source order, named in the message with the estimated similarity, is kept. Raise "
        "`threshold` if the records are different enough to keep.",
    ),
    "conflicting_duplicate": (
        "dedupe",
        "The record has the same `subset` fields (e.g. the same prompt) as an earlier record, "
        "named in the message, but different content (e.g. another completion), and "
        "`conflicts` is `reject`. Decide which answer is right and fix or remove the other.",
    ),
}


# Warning codes: the record is kept, and the report lists the code with counts and lines.
WARNINGS: dict[str, tuple[str, str]] = {
    "encoding_replaced": (
        "read",
        "With `input.encoding_errors: replace`: bytes of the record that do not decode were "
        "replaced by U+FFFD (the message says how many); the report counts them under the "
        "`read` step's changes.",
    ),
    "header_guessed": (
        "read",
        "A file-level warning (`inputs[].warnings` in report.json, and on the terminal): with "
        "`input.header: auto`, row 1 of a CSV/TSV file or sheet looked like data and was read "
        "as a record (columns named `column_1`, `column_2`, ...), or was taken as the header "
        "without the rows below confirming it. The message shows row 1 and the "
        "`input.header` setting that reads it the other way.",
    ),
    "header_mismatch": (
        "read",
        "A file-level warning: `input.header` is set, but row 1 clearly looks the other way "
        "(data under `true`, a header under `false`); the message says why and what to set.",
    ),
    "format_from_content": (
        "read",
        "A file-level warning: the file's content is not what its extension says (an old .xls "
        "workbook named .xlsx, JSON Lines named .json, ...) or the extension names no format "
        "(.txt); it was read as what its first bytes show (`format_from: content` in the "
        "report). Rename the file or set `input.format` to silence it.",
    ),
    "encoding_uncertain": (
        "read",
        "A file-level warning: the text encoding was guessed with a confidence below 0.5 "
        "(`pipeline.read.encoding.LOW_CONFIDENCE`); the message gives the guess, the "
        "confidence, a decoded sample to check, and the `input.encoding` setting that fixes "
        "the encoding if the sample reads wrong.",
    ),
    # --- validate_schema (add its codes below this line) ---
    "user_missing": (
        "validate_schema",
        "A chat record with no user message (the cookbook counts it as a warning, not a format error); the model learns answers without questions.",
    ),
    "weights_all_zero": (
        "validate_schema",
        "Every assistant message has `weight: 0`: the example trains on nothing.",
    ),
    "special_token_in_text": (
        "validate_schema",
        "A text contains a special-token string such as `<|endoftext|>` or `<|im_start|>`; tokenizers may treat it as a control token.",
    ),
    "tool_definitions_missing": (
        "validate_schema",
        "Tool or function calls in a record without `tools`/`functions` to define them (OpenAI allows it, but the model learns calls it will not be given definitions for).",
    ),
    "preference_identical": (
        "validate_schema",
        "`preferred_output` and `non_preferred_output` are the same: the pair teaches nothing.",
    ),
    "top_level_key_ignored": (
        "validate_schema",
        "With `extra_keys: warn`: a top-level key the target does not take; ftprep writes only the canonical fields, so it is dropped.",
    ),
    # --- legacy_format and convert (add their codes below this line) ---
    "label_not_single_token": (
        "legacy_format",
        "Classification data whose label (the completion without its stop) is not a single token in the target's tokenizer; single-token labels allow max_tokens=1 and logprobs.",
    ),
    "class_too_small": (
        "legacy_format",
        "Classification data with a class of fewer than `min_class_examples` (100) records in the whole dataset (the report's `dataset.legacy_format.classes` has the counts).",
    ),
    # --- count_tokens and token_limit (add their codes below this line) ---
    "chat_template_failed": (
        "count_tokens",
        "The model's chat template (rendered because the target formats examples with it) "
        "raised for this example, e.g. its `raise_exception` for roles that do not alternate; "
        "the message has the template's error. The example is kept and its tokens are counted "
        "by the chat formula instead; the trainer or service may refuse it.",
    ),
    "over_token_limit": (
        "token_limit",
        "The example has more tokens than the target allows per example and `over_limit` is "
        "`keep`: it is written as is, and the service will truncate (or refuse) it.",
    ),
    "truncated": (
        "token_limit",
        "The example was over the per-example token limit and `over_limit` is `truncate`: the "
        "end of its last message (the completion of a prompt/completion pair) was cut at a "
        "token boundary so it fits; the message says how many tokens were cut.",
    ),
    # --- scan_sensitive (add its codes below this line) ---
    "secret_detected": (
        "scan_sensitive",
        "With `secrets: warn` (or a secret kind's action `warn`): the record holds what looks "
        "like a secret (kind and field path in the message) and is kept unchanged.",
    ),
    "pii_detected": (
        "scan_sensitive",
        "The record holds personal data (an email address, phone number, Chinese resident ID, "
        "credit-card number or public IP address; kind and field path in the message) and is "
        "kept unchanged: PII kinds warn by default. Set `pii: redact` or `pii: reject` to act.",
    ),
    # --- dedupe and split (add their codes below this line) ---
}


def check_warning(code: str) -> str:
    """Return `code` if it is a documented warning code; an undocumented one is a bug."""
    if code not in WARNINGS:
        raise AssertionError(f"warning code {code!r} is not in pipeline.reasons.WARNINGS")
    return code


def check(code: str) -> str:
    """Return `code` if it is documented; an undocumented code is a bug."""
    if code not in REASONS:
        raise AssertionError(f"reason code {code!r} is not in pipeline.reasons.REASONS")
    return code


def reasons_markdown() -> str:
    lines = [
        "# Reason codes",
        "",
        "<!-- Generated by `python -m pipeline.reasons > docs/reasons.md`; do not edit. -->",
        "",
        "Every rejected record in `rejected.jsonl` carries one of these codes in `reason`, the",
        "stage that gave it in `stage`, and a message that says what to change.",
        "",
        "| code | stage | meaning |",
        "|---|---|---|",
    ]
    for code, (stage, meaning) in sorted(REASONS.items()):
        lines.append(f"| `{code}` | `{stage}` | {meaning} |")
    lines += [
        "",
        "## Warning codes",
        "",
        "A warning keeps the record; `report.json` lists each code under `warnings` with its",
        "count and the first source lines.",
        "",
        "| code | stage | meaning |",
        "|---|---|---|",
    ]
    for code, (stage, meaning) in sorted(WARNINGS.items()):
        lines.append(f"| `{code}` | `{stage}` | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reasons_markdown(), end="")
