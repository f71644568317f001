#!/usr/bin/python3
"""Reference CLIP BPE tokenizer and toy vocabulary for the tests of src/clip/.

Follows transformers' CLIPTokenizer without ftfy (BasicTokenizer cleanup, the CLIP regex,
bytes_to_unicode, BPE by merge rank), written on Python's own Unicode tools (unicodedata, the
`regex` module) so that it checks the C++ tokenizer, which uses ICU, independently.

Usable as a module:
    write_toy_tokenizer(directory, pad_token)   # vocab.json, merges.txt, special_tokens_map.json,
                                                # tokenizer_config.json
    encode(directory, prompt) -> list of ids    # [bos] + tokens[:max-2] + [eos] + pad...
and as a command line (Debian's /usr/bin/python3, which has `regex`):
    clip_reference_tokenizer.py write DIR PAD
    clip_reference_tokenizer.py encode DIR < prompts.json > ids.json
"""

import json
import os
import sys
import unicodedata

import regex

START = "<|startoftext|>"
END = "<|endoftext|>"
MODEL_MAX_LENGTH = 77
TOY_MERGE_COUNT = 300

PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)

# The small built-in corpus the toy merges are learned from. A few accented words give merges of
# multi-byte symbols too.
TOY_CORPUS = """
A photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus.
A painting of a cat sitting on a chair in the garden, in the style of an old master.
The quick brown fox jumps over the lazy dog while the sun is setting behind the mountains.
A portrait of a woman with a red hat, standing in the rain, cinematic lighting, trending.
A beautiful landscape with a river, green trees, tall mountains and a clear blue sky.
An old castle on a hill at night, the stars are shining and the moon is full and bright.
A city street in the evening, people walking, neon lights reflecting in the wet road.
It's a small house by the sea; they're painting the walls white and the door is blue.
We've seen the photos of the forest, and I'll remember the colors of the autumn leaves.
She said the cafe was naive but the creme brulee was the best in the whole city.
Le café est très bon, la crème brûlée aussi; c'est un déjeuner élégant et naïf.
Digital art of a dragon flying above the clouds, fantasy, intricate, elegant, detailed.
A close up photo of a flower with water drops, macro photography, soft light, bokeh.
A robot playing the piano in a concert hall, dramatic lighting, ultra realistic render.
"""


def bytes_to_unicode():
    """CLIP's byte -> printable character table (the GPT-2 one)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\u00a1"), ord("\u00ac") + 1))
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    )
    table = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


BYTE_ENCODER = bytes_to_unicode()


def _is_cjk(code_point):
    return (
        0x4E00 <= code_point <= 0x9FFF
        or 0x3400 <= code_point <= 0x4DBF
        or 0x20000 <= code_point <= 0x2A6DF
        or 0x2A700 <= code_point <= 0x2B73F
        or 0x2B740 <= code_point <= 0x2B81F
        or 0x2B820 <= code_point <= 0x2CEAF
        or 0xF900 <= code_point <= 0xFAFF
        or 0x2F800 <= code_point <= 0x2FA1F
    )


def normalize(text):
    """BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False)."""
    cleaned = []
    for char in text:
        code_point = ord(char)
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            cleaned.append(" ")
        elif code_point == 0 or code_point == 0xFFFD or unicodedata.category(char).startswith("C"):
            continue
        elif _is_cjk(code_point):
            cleaned.append(" " + char + " ")
        else:
            cleaned.append(char)
    text = unicodedata.normalize("NFC", "".join(cleaned))
    return " ".join(word.lower() for word in text.split())


def pre_tokenize(text):
    """The pieces of normalised text, each as its bytes_to_unicode string."""
    return PATTERN.findall(text)


def bpe(piece, ranks):
    """The BPE symbols of one piece (already mapped through bytes_to_unicode)."""
    word = list(piece[:-1]) + [piece[-1] + "</w>"]
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        merged = []
        i = 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def tokenize(vocab, ranks, text):
    """BPE ids of a prompt, without framing."""
    ids = []
    for piece in pre_tokenize(normalize(text)):
        if piece in (START, END):  # transformers' BPE cache holds exactly these two
            ids.append(vocab[piece])
            continue
        mapped = "".join(BYTE_ENCODER[byte] for byte in piece.encode("utf-8"))
        ids.extend(vocab.get(symbol, vocab[END]) for symbol in bpe(mapped, ranks))
    return ids


def _content(token):
    return token["content"] if isinstance(token, dict) else token


def load(directory):
    with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as handle:
        vocab = json.load(handle)
    with open(os.path.join(directory, "merges.txt"), encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    while lines and lines[-1] == "":
        lines.pop()
    ranks = {tuple(line.split(" ")): rank for rank, line in enumerate(lines)}
    with open(os.path.join(directory, "special_tokens_map.json"), encoding="utf-8") as handle:
        pad_token = _content(json.load(handle).get("pad_token", END))
    with open(os.path.join(directory, "tokenizer_config.json"), encoding="utf-8") as handle:
        max_length = json.load(handle).get("model_max_length", MODEL_MAX_LENGTH)
    if max_length > 1024:
        max_length = MODEL_MAX_LENGTH
    return vocab, ranks, vocab[pad_token], int(max_length)


def encode_with(loaded, prompt):
    vocab, ranks, pad_id, max_length = loaded
    ids = tokenize(vocab, ranks, prompt)[: max_length - 2]
    framed = [vocab[START]] + ids + [vocab[END]]
    return framed + [pad_id] * (max_length - len(framed))


def encode(directory, prompt):
    """[bos] + BPE ids[:max_length-2] + [eos] + pad..., exactly max_length ids."""
    return encode_with(load(directory), prompt)


def learn_merges(corpus, count):
    """Plain BPE: the most frequent adjacent pair wins; ties go to the smallest pair."""
    frequencies = {}
    for piece in pre_tokenize(normalize(corpus)):
        mapped = "".join(BYTE_ENCODER[byte] for byte in piece.encode("utf-8"))
        word = tuple(mapped[:-1]) + (mapped[-1] + "</w>",)
        frequencies[word] = frequencies.get(word, 0) + 1
    merges = []
    while len(merges) < count:
        pair_counts = {}
        for word, frequency in frequencies.items():
            for pair in zip(word, word[1:]):
                pair_counts[pair] = pair_counts.get(pair, 0) + frequency
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(best)
        updated = {}
        for word, frequency in frequencies.items():
            merged = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            merged = tuple(merged)
            updated[merged] = updated.get(merged, 0) + frequency
        frequencies = updated
    return merges


def _added_token(content):
    return {
        "content": content,
        "lstrip": False,
        "normalized": True,
        "rstrip": False,
        "single_word": False,
    }


def write_toy_tokenizer(directory, pad_token):
    """A tokenizer folder in the HF/Optimum layout with CLIP's vocabulary layout: the 256 byte
    characters, the same with </w>, one entry per merge, then <|startoftext|>, <|endoftext|>."""
    os.makedirs(directory, exist_ok=True)
    merges = learn_merges(TOY_CORPUS, TOY_MERGE_COUNT)
    symbols = list(BYTE_ENCODER.values())
    symbols += [symbol + "</w>" for symbol in symbols]
    for first, second in merges:
        if first + second not in symbols:
            symbols.append(first + second)
    symbols += [START, END]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump(vocab, handle, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as handle:
        handle.write("#version: 0.2\n")
        handle.write("".join(f"{first} {second}\n" for first, second in merges))
    special = {
        "bos_token": _added_token(START),
        "eos_token": _added_token(END),
        "pad_token": pad_token,
        "unk_token": _added_token(END),
    }
    with open(os.path.join(directory, "special_tokens_map.json"), "w", encoding="utf-8") as handle:
        json.dump(special, handle, indent=2)
    config = {
        "add_prefix_space": False,
        "bos_token": dict(_added_token(START), __type="AddedToken"),
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": dict(_added_token(END), __type="AddedToken"),
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": pad_token,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": dict(_added_token(END), __type="AddedToken"),
    }
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)


def main(arguments):
    if len(arguments) == 3 and arguments[0] == "write":
        write_toy_tokenizer(arguments[1], arguments[2])
        return 0
    if len(arguments) == 2 and arguments[0] == "encode":
        loaded = load(arguments[1])
        prompts = json.load(sys.stdin)
        json.dump([encode_with(loaded, prompt) for prompt in prompts], sys.stdout)
        sys.stdout.write("\n")
        return 0
    sys.stderr.write(
        "usage: clip_reference_tokenizer.py write DIR PAD\n"
        "       clip_reference_tokenizer.py encode DIR < prompts.json > ids.json\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
