"""Column names people give prompts and completions, in the languages of fine-tuning data.

Used twice: to suggest a column mapping (`pipeline.read.mapping.guess_columns`, `ftprep init`)
and as evidence that a first row is a header (`pipeline.read.header`). A name matches a hint
when one of its words is the hint (``user_question`` has the word ``question``), or, for hints
in scripts written without spaces (Chinese, Japanese, Thai), when it contains the hint
(``用户问题`` contains ``问题``). A one-letter hint (``q``, ``a``, ``问``, ``答``) matches only the
whole name.
"""

from __future__ import annotations

import re

PROMPT_NAMES: tuple[str, ...] = (
    # English first: the order is the preference when several columns match
    "prompt", "question", "instruction", "input", "query", "ask", "user", "q", "request",
    "problem", "context",
    # zh (simplified / traditional), ja, ko
    "问题", "問題", "提问", "提問", "指令", "输入", "輸入", "问", "問", "質問", "入力", "질문",
    "지시", "입력",
    # es, pt, it, fr, de, nl, tr, ru, uk, pl, ar, hi, vi, id, th
    "pregunta", "instrucción", "instruccion", "entrada", "pergunta", "instrução", "domanda",
    "istruzione", "richiesta", "frage", "anweisung", "eingabe", "vraag",
    "invoer", "soru", "talimat", "girdi", "вопрос", "запрос", "инструкция", "питання",
    "pytanie", "polecenie", "سؤال", "السؤال", "تعليمات", "प्रश्न", "सवाल", "câu hỏi",
    "pertanyaan", "instruksi", "คำถาม",
)

COMPLETION_NAMES: tuple[str, ...] = (
    "completion", "answer", "response", "output", "reply", "assistant", "a", "target",
    "solution", "result",
    "答案", "回答", "回复", "回覆", "答复", "输出", "輸出", "答", "応答", "解答", "出力", "답변",
    "답", "응답", "출력",
    "respuesta", "salida", "resposta", "saída", "risposta", "réponse", "reponse", "antwort",
    "ausgabe", "antwoord", "uitvoer", "cevap", "yanıt", "yanit", "çıktı", "ответ", "відповідь",
    "odpowiedź", "odpowiedz", "جواب", "إجابة", "الإجابة", "الجواب", "उत्तर", "जवाब",
    "câu trả lời", "trả lời", "jawaban", "คำตอบ",
)

NOT_TEXT_NAMES = frozenset(
    {"id", "index", "label", "category", "class", "is", "type", "source", "topic", "tag",
     "tags", "date", "time", "lang", "language", "score", "rating", "url", "no", "num"}
)

_NO_SPACES = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def name_words(name: str) -> list[str]:
    """The lower-cased words of a column name (split at anything not a letter)."""
    return [w for w in re.split(r"[\W\d_]+", str(name).lower()) if w]


def matches(name: str, hint: str) -> bool:
    """Whether a column name carries a hint (a word of it, or inside it for CJK/Thai)."""
    lowered = str(name).strip().lower()
    if len(hint) == 1:  # q, a, 问, 答: the whole name, never a word of it (`text_a`)
        return lowered == hint
    if " " in hint:
        return hint in lowered
    if _NO_SPACES.search(hint):
        return hint in lowered
    return hint in name_words(lowered)


def known_name(name: str) -> bool:
    """Whether `name` is a prompt or completion name of any language."""
    return any(matches(name, h) for h in PROMPT_NAMES + COMPLETION_NAMES)
