"""The one schema of the YAML settings (stgan_cli/files/schema.py): rules by type or declared, laid
over defaults section by section, one line naming the key when a value is refused."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from stgan_cli.errors import StganError, UsageError
from stgan_cli.files import schema
from stgan_cli.files.schema import accepts, number, sequence, text


@dataclass
class Inner:
    rate: float = field(default=0.1, metadata=accepts(number(above=0)))
    size: tuple[int, int] = field(default=(4, 4), metadata=accepts(sequence(number(lo=1, whole=True), 2)))


@dataclass
class Outer:
    count: int = 3
    scale: float = 0.5
    name: str | None = None
    flag: bool = False
    kind: str = field(default="a", metadata=accepts(text(("a", "b", "c"))))
    inner: Inner = field(default_factory=Inner)


def test_types_give_rules_and_values_are_converted():
    obj = Outer()
    schema.merge(obj, {"count": 5.0, "scale": "1e-5", "name": "x", "flag": True, "inner": {"size": [2, 3]}}, "f")
    assert obj.count == 5 and isinstance(obj.count, int) and obj.scale == 1e-5  # YAML reads 1e-5 as text
    assert obj.name == "x" and obj.flag is True and obj.inner.size == (2, 3) and obj.inner.rate == 0.1
    schema.merge(obj, {"name": None, "inner": None}, "f")  # an optional value, an empty section
    assert obj.name is None and obj.inner.size == (2, 3)


@pytest.mark.parametrize("data,message", [
    ({"cuont": 1}, "f: unknown key 'cuont' (did you mean 'count'?)"),
    ({"inner": {"rat": 1}}, "f: unknown key 'inner.rat' (did you mean 'rate'?)"),
    ({"count": 2.5}, "f: count must be a whole number >= 0, not 2.5"),
    ({"count": -1}, "f: count must be a whole number >= 0, not -1"),
    ({"scale": "nan"}, "f: scale must be a finite number >= 0, not 'nan'"),
    ({"scale": True}, "f: scale must be a finite number >= 0, not True"),
    ({"flag": "yes"}, "f: flag must be true or false, not 'yes'"),
    ({"kind": "d"}, "f: kind must be a, b or c, not 'd'"),
    ({"name": 5}, "f: name must be text, or null"),
    ({"inner": {"rate": 0}}, "f: inner.rate must be a finite number above 0, not 0"),
    ({"inner": {"size": [1]}}, "f: inner.size must be 2 values, each a whole number >= 1, not [1]"),
    ({"inner": [1, 2]}, "f: inner must be a mapping of settings, not list"),
    ([1, 2], "f: the file must be a mapping of settings, not list"),
])
def test_a_refused_value_is_one_line_naming_the_key(data, message):
    with pytest.raises(UsageError) as err:
        schema.merge(Outer(), data, "f", error=UsageError)
    assert message in str(err.value)


def test_the_model_and_training_configs_share_it():
    from stgan_cli.model.config import ModelConfig
    from stgan_cli.training.config import OptimSection, TrainConfig

    assert schema.rules(ModelConfig)["warps"].what == "a whole number >= 1"
    assert schema.rules(OptimSection)["lr_g"].what == "a finite number above 0"
    assert set(schema.rules(TrainConfig)) == set()  # every field of a training config is a section
    with pytest.raises(StganError, match="placement.scale must be a number in"):
        ModelConfig.from_dict({"placement": {"scale": 0}})
