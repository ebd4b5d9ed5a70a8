"""Bad generation settings and config files: mf-generate's own one-line errors (issue 10)."""

from __future__ import annotations

import pytest

from mf_generate import GenerateConfigError, GenerationConfig


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    return message


@pytest.mark.parametrize("kwargs,message", [
    ({"max_new_token": 4}, "'max_new_token' is not a generation setting; did you mean "
                           "'max_new_tokens'?"),
    ({"topk": 4}, "'topk' is not a generation setting; did you mean 'top_k'?"),
    ({"beams": 4}, "'beams' is not a generation setting; allowed: max_length, max_new_tokens"),
])
def test_an_unknown_keyword_is_a_config_error_with_a_did_you_mean(kwargs, message):
    for make in (lambda: GenerationConfig(**kwargs), lambda: GenerationConfig().replace(**kwargs),
                 lambda: GenerationConfig.from_model_config({}, **kwargs)):
        with pytest.raises(GenerateConfigError) as err:
            make()
        assert one_line(err).startswith(message)


def test_too_many_positional_values_is_a_config_error():
    with pytest.raises(GenerateConfigError) as err:
        GenerationConfig(*range(20))
    assert one_line(err) == ("GenerationConfig takes at most 13 positional values, got 20; "
                             "name them")


def test_known_keywords_still_construct_and_validate():
    config = GenerationConfig(max_new_tokens=3, top_k=2)
    assert (config.max_new_tokens, config.top_k) == (3, 2)
    assert GenerationConfig(30).max_length == 30
    with pytest.raises(GenerateConfigError, match="top_p=1.5 must be in"):
        GenerationConfig(top_p=1.5)


def test_a_config_yaml_bomb_or_bad_yaml_is_one_line(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (tmp_path / "config.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception) as err:  # mf-models' bound, not an expansion
        GenerationConfig.from_pretrained(tmp_path)
    assert "YAML aliases would expand" in one_line(err)
    (tmp_path / "config.yaml").write_text("model: [unclosed\n")
    with pytest.raises(GenerateConfigError) as err:
        GenerationConfig.from_pretrained(tmp_path)
    assert one_line(err).startswith(f"cannot read {tmp_path / 'config.yaml'}")
