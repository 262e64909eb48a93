"""Small, dependency-free text formatting helpers."""


def title_case(text):
    """Capitalizes the first letter of every whitespace-separated word."""
    return " ".join(w[:1].upper() + w[1:].lower() for w in text.split())


def wrap(text, width):
    """Greedily wraps `text` into lines of at most `width` characters.

    Words longer than `width` are kept whole on their own line.
    """
    if width < 1:
        raise ValueError("width must be positive")
    lines, current = [], ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def boxed(lines, pad=1):
    """Draws an ASCII box around `lines`."""
    inner = max((len(line) for line in lines), default=0) + 2 * pad
    border = "+" + "-" * inner + "+"
    body = ["|" + " " * pad + line.ljust(inner - 2 * pad) + " " * pad + "|"
            for line in lines]
    return [border] + body + [border]


def word_counts(text):
    """Returns {word: count} for the lower-cased words of `text`."""
    counts = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts
