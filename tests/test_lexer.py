"""The Pygments lexer: found by name through its entry point, each token class where it belongs.

The expected tokens are read off the spec text by hand: which words of a line are
keywords, numbers, options, labels, parameters and expressions.
"""

from __future__ import annotations

from pathlib import Path

import pygments
import pygments.lexers
import pytest
from pygments.formatters import HtmlFormatter
from pygments.token import Comment, Error, Keyword, Name, Number, String, Token

from netspec.language.grammar import GRAMMAR
from netspec.language.lexer import NetspecLexer, grammar_keywords

ROOT = Path(__file__).resolve().parent.parent


def tokens(text: str) -> list[tuple[object, str]]:
    """The non-blank tokens of `text`."""
    return [(t, v) for t, v in NetspecLexer().get_tokens(text) if v.strip()]


def test_found_by_name_and_by_file_name() -> None:
    """Pygments finds it through the `pygments.lexers` entry point of an installed netspec
    (`pip install -e .`), as MkDocs, Sphinx and Jupyter look lexers up."""
    assert isinstance(pygments.lexers.get_lexer_by_name("netspec"), NetspecLexer)
    assert isinstance(pygments.lexers.get_lexer_for_filename("resnet18.ns"), NetspecLexer)


def test_keywords_are_the_grammars_quoted_terminals() -> None:
    words = set(grammar_keywords())
    assert {"conv", "pool", "fc", "residual", "concat", "repeat", "block", "use", "same",
            "nobias", "relu6", "upsample", "as"} <= words
    assert "?" not in words   # `residual?` is a terminal too, but not a word
    grammar = Path(GRAMMAR).read_text() + 'FROBNICATE: "frobnicate"\n'
    assert set(grammar_keywords(grammar)) == words | {"frobnicate"}
    # longest first, so that `relu6` is one keyword rather than `relu` and a number
    assert tokens("relu6") == [(Keyword, "relu6")]


def test_lenet_line_by_line() -> None:
    text = (ROOT / "specs/lenet5.ns").read_text()
    toks = tokens(text)
    assert (Keyword, "input") in toks and (Number, "32x32x3") in toks
    line = tokens("conv 5x5 s1 p0 x6; pool 2 s2")
    assert line == [
        (Keyword, "conv"), (Number, "5x5"), (Name.Attribute, "s"), (Number.Integer, "1"),
        (Name.Attribute, "p"), (Number.Integer, "0"), (Name.Attribute, "x"),
        (Number.Integer, "6"), (Token.Punctuation, ";"), (Keyword, "pool"),
        (Number.Integer, "2"), (Name.Attribute, "s"), (Number.Integer, "2")]
    # the spec holds that line, token for token
    assert any(toks[i:i + len(line)] == line for i in range(len(toks)))


def test_every_option_is_an_attribute() -> None:
    toks = tokens("conv 3x3 s2 d2 g4 x32; deconv 2x2 s2 op1 x64; bn eps1e-3; "
                  "lrn 5 a0.0001 b0.75 k2")
    attrs = [v for t, v in toks if t is Name.Attribute]
    assert attrs == ["s", "d", "g", "x", "s", "op", "x", "eps", "a", "b", "k"]
    assert (Number.Float, "1e-3") in toks and (Number.Float, "0.0001") in toks
    assert (Keyword, "deconv") in toks and (Keyword, "lrn") in toks


def test_resnet_library_labels_params_and_expressions() -> None:
    """specs/lib/resnet.ns: labels (`conv1:`, keywords as labels), `$params`, `{expressions}`
    with `if`/`else`, block names where defined and called, comments."""
    toks = tokens((ROOT / "specs/lib/resnet.ns").read_text())
    assert (Name.Label, "conv1") in toks and (Name.Label, "downsample") in toks
    assert (Name.Variable, "$c") in toks and (Name.Variable, "$s") in toks
    assert (Name.Function, "basic") in toks and (Name.Function, "bottleneck") in toks
    assert (Keyword, "residual") in toks and (Keyword, "project") in toks
    assert any(t is Comment.Single for t, _ in toks)
    # `s={s if j == 0 else 1}`: braces, a name, keywords, an operator, numbers
    line = tokens("repeat $n as j basic($c, s={s if j == 0 else 1})")
    assert line[-12:] == [
        (Name, "s"), (Token.Operator, "="), (String.Interpol, "{"), (Name.Variable, "s"),
        (Keyword, "if"), (Name.Variable, "j"), (Token.Operator, "=="), (Number.Integer, "0"),
        (Keyword, "else"), (Number.Integer, "1"), (String.Interpol, "}"),
        (Token.Punctuation, ")")]
    assert line[:5] == [(Keyword, "repeat"), (Name.Variable, "$n"), (Keyword, "as"),
                        (Name, "j"), (Name.Function, "basic")]


def test_resnet18_uses_a_string_and_keyword_labels() -> None:
    toks = tokens((ROOT / "specs/resnet18.ns").read_text())
    assert (Keyword, "use") in toks and (String.Double, '"lib/resnet.ns"') in toks
    # `fc: fc 1000`: a keyword as a label, then the keyword
    assert tokens("fc: fc 1000") == [(Name.Label, "fc"), (Token.Punctuation, ":"),
                                     (Keyword, "fc"), (Number.Integer, "1000")]
    assert tokens("2: bn")[:2] == [(Name.Label, "2"), (Token.Punctuation, ":")]


def test_expressions_and_groups_are_told_apart() -> None:
    """ConvNeXt's `linear {4*C}` is an expression with the input's channels `C`; a group
    `{ conv … }` is punctuation around statements."""
    toks = tokens((ROOT / "specs/lib/convnext.ns").read_text())
    assert (Name.Builtin, "C") in toks
    line = tokens("linear {4*C}; repeat 3 { conv 3x3 p1 x64 relu }; branch {}")
    assert line[:6] == [(Keyword, "linear"), (String.Interpol, "{"), (Number.Integer, "4"),
                        (Token.Operator, "*"), (Name.Builtin, "C"), (String.Interpol, "}")]
    assert (Token.Punctuation, "{") in line and (Keyword, "conv") in line
    assert line[-3:] == [(Keyword, "branch"), (Token.Punctuation, "{"), (Token.Punctuation, "}")]
    assert tokens("x{C/2}") == [(Name.Attribute, "x"), (String.Interpol, "{"),
                                (Name.Builtin, "C"), (Token.Operator, "/"),
                                (Number.Integer, "2"), (String.Interpol, "}")]


def test_ignore_comments_stand_out() -> None:
    toks = tokens("conv 3x3 s2 x8   # netspec: ignore[lost-input]\n# a comment")
    assert toks[-2:] == [(Comment.Special, "# netspec: ignore[lost-input]"),
                         (Comment.Single, "# a comment")]


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("**/*.ns")),
                         ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_shipped_spec_lexes_whole(path: Path) -> None:
    """Every character of every shipped spec gets a token, none of them an error or an
    unclassified character."""
    text = path.read_text()
    toks = list(NetspecLexer().get_tokens(text))
    assert "".join(v for _, v in toks).rstrip("\n") == text.rstrip("\n")
    unclassified = [(t, v) for t, v in toks if t is Error or (t is Token.Text and v.strip())]
    assert not unclassified


def test_html_spans_carry_pygments_classes() -> None:
    html = pygments.highlight("stem: conv 3x3 s2 x$c  # c", NetspecLexer(), HtmlFormatter())
    for span in ('<span class="nl">stem</span>', '<span class="k">conv</span>',
                 '<span class="m">3x3</span>', '<span class="na">s</span>',
                 '<span class="nv">$c</span>', '<span class="c1"># c</span>'):
        assert span in html


def test_the_times_sign_reads_as_x() -> None:
    """`×`, as netspec prints sizes, is the grammar's `x` too: the same tokens as `x`."""
    assert tokens("input 32×32×3") == [(Keyword, "input"), (Number, "32×32×3")]
    assert tokens("conv 5×5 s1 ×6") == [
        (Keyword, "conv"), (Number, "5×5"), (Name.Attribute, "s"), (Number.Integer, "1"),
        (Name.Attribute, "×"), (Number.Integer, "6")]
    assert [t for t, _ in tokens("conv 3×{k} ×$c")] == \
        [t for t, _ in tokens("conv 3x{k} x$c")]
