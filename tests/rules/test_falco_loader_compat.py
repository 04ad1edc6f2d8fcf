"""Falco's rules-file behaviour, case by case: what it accepts, what it refuses, and with which code.

Each case is modelled on one of Falco's own tests or on the loader code it exercises; the `mirrors`
column names it, in falcosecurity/falco unless said otherwise:

- ``test_rule_loader.cpp/NAME``: unit_tests/engine/test_rule_loader.cpp, TEST_F(test_falco_engine, NAME);
- ``legacy:NAME``: the regression tests of test/falco_tests.yaml (removed in b1ae5d3d, now
  falcosecurity/testing tests/falco/legacy_test.go) and their rules file test/rules/NAME.yaml;
- ``reader:``, ``collector:``, ``compiler:``: userspace/engine/rule_loader_reader.cpp,
  rule_loader_collector.cpp, rule_loader_compiler.cpp, where no test covers the behaviour.

The YAML is written here after those files, not copied. `errors` and `warnings` are the exact sets of
codes Stockade must report (Falco stops at the first error of a file; Stockade lists all, so a case
has one error). yaml-cpp's readings were observed with yaml-cpp at Falco's pinned commit c2bec4c.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stockade.engine import Engine
from stockade.model.event import Event
from stockade.rules.ast import Check, ListLit, walk
from stockade.rules.loader import check_rules
from stockade.rules.ruleset import Ruleset

RULE = """
- rule: r
  desc: d
  condition: evt.type = open
  output: o %proc.name
  priority: INFO
"""


@dataclass(frozen=True)
class Case:
    id: str
    mirrors: str
    files: tuple[str, ...]
    errors: frozenset[str] = frozenset()
    warnings: frozenset[str] = frozenset()
    message: str | None = None  # a part of the (first) error's or warning's message, as Falco words it
    rules: tuple[str, ...] | None = None  # the rules that load (have a condition to run)
    extra: dict[str, object] = field(default_factory=dict)


def case(
    id: str,
    mirrors: str,
    *files: str,
    errors: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
    message: str | None = None,
    rules: tuple[str, ...] | None = None,
) -> Case:
    return Case(id, mirrors, files, frozenset(errors), frozenset(warnings), message, rules)


ACCEPTED = [
    case("bare_dash_item", "reader: read() skips null items", "-\n" + RULE + "-\n", rules=("r",)),
    case("empty_file", "legacy:empty_rules (multiple_rules_first_empty)", "# nothing here\n", rules=()),
    case(
        "empty_mapping_item",
        "reader: read_item, unknown top level item",
        "- {}\n" + RULE,
        warnings=("LOAD_UNKNOWN_ITEM",),
        message="Unknown top level item",
        rules=("r",),
    ),
    case(
        "unknown_top_level_item",
        "reader: read_item, unknown top level item",
        "- something: x\n" + RULE,
        warnings=("LOAD_UNKNOWN_ITEM",),
        rules=("r",),
    ),
    case(
        "multiple_documents",
        "legacy:multiple_docs",
        """
        ---
        - required_engine_version: 2
        - list: cat_binaries
          items: [cat]
        - list: cat_capable_binaries
          items: [cat_binaries]
        - macro: is_cat
          condition: proc.name in (cat_capable_binaries)
        ---
        - rule: exec_from_cat
          desc: a cat execs
          condition: evt.type=execve and is_cat
          output: "An exec was seen (command=%proc.cmdline)"
          priority: ERROR
        """,
        rules=("exec_from_cat",),
    ),
    case(
        "yaml_cpp_plain_text_values",
        "reader: every value is decoded from its scalar text (yaml-cpp ignores tags)",
        """
        - rule: r
          desc: != after evt.type
          condition: evt.type = open and proc.name = <<
          output: << merged %proc.name
          priority: INFO
          tags: [yes, no, 0x1F, 2024-01-01, =]
        """,
        rules=("r",),
    ),
    case(
        "skip_if_unknown_filter_field",
        "legacy:skip_unknown_evt (validate_skip_unknown_noevt); compiler: compile_condition",
        """
        - rule: Contains Unknown Field And Skipping
          desc: d
          condition: evt.type=open and proc.nobody=cat
          output: Never
          skip-if-unknown-filter: true
          priority: INFO
        """,
        warnings=("LOAD_UNKNOWN_FILTER",),
        message="filter_check called with nonexistent field proc.nobody",
        rules=(),
    ),
    case(
        "skip_if_unknown_filter_evttype",
        "legacy:skip_unknown_evt (Contains Unknown Event And Skipping (evt type))",
        """
        - rule: Contains Unknown Event And Skipping
          desc: d
          condition: evt.type=some_invalid_event
          output: Never
          skip-if-unknown-filter: true
          priority: INFO
        """,
        warnings=("LOAD_UNKNOWN_FILTER",),
        message="unknown event type some_invalid_event",
        rules=(),
    ),
    case(
        "skip_if_unknown_filter_output",
        "compiler: compile_rule_infos, is_format_valid with skip_if_unknown_filter",
        """
        - rule: unknown output field
          desc: d
          condition: evt.type=open
          output: seen %proc.nobody
          skip-if-unknown-filter: true
          priority: INFO
        """,
        warnings=("LOAD_UNKNOWN_FILTER",),
        rules=(),
    ),
    case(
        "skip_unknown_prefix",
        "legacy:skip_unknown_prefix",
        """
        - rule: Contains Prefix of Filter
          desc: d
          condition: >
            evt.type=open and evt.arg.path="foo" and evt.arg[0]="foo"
            and proc.aname="ls" and proc.aname[1]="ls"
            and proc.apid=10 and proc.apid[1]=10
          output: Never
          priority: INFO
        """,
        rules=("Contains Prefix of Filter",),
    ),
    case(
        "rule_with_skip_if_unknown_filter",
        "test_rule_loader.cpp/rule_with_skip_if_unknown_filter",
        RULE.replace("priority: INFO", "priority: INFO\n  skip-if-unknown-filter: true"),
        rules=("r",),
    ),
    case(
        "macro_override_replace_before_definition",
        "test_rule_loader.cpp/macro_override_replace_before_macro_definition",
        """
        - macro: open_simple
          condition: or evt.type = openat2
          override:
            condition: replace
        - macro: open_simple
          condition: evt.type in (open,openat)
        - rule: test_rule
          desc: simple rule
          condition: open_simple
          output: command=%proc.cmdline
          priority: INFO
        """,
        rules=("test_rule",),
    ),
    case(
        "list_override_replace_before_definition",
        "test_rule_loader.cpp/list_override_replace_before_list_definition",
        """
        - list: dev_creation_binaries
          items: ["csi-provisioner", "csi-attacher"]
          override:
            items: replace
        - list: dev_creation_binaries
          items: [blkid]
        - rule: test_rule
          desc: simple rule
          condition: evt.type = execve and proc.name in (dev_creation_binaries)
          output: command=%proc.cmdline
          priority: INFO
        """,
        rules=("test_rule",),
    ),
    case(
        "rewrite_rule",
        "test_rule_loader.cpp/rewrite_rule",
        RULE,
        RULE.replace("evt.type = open", "evt.type = close"),
        rules=("r",),
    ),
    case(
        "rule_enabled_warning",
        "test_rule_loader.cpp/rule_enabled_warning",
        RULE,
        "- rule: r\n  enabled: false\n",
        warnings=("LOAD_DEPRECATED_ITEM",),
        message="standalone 'enabled' key usage is deprecated",
    ),
    case(
        "rule_append_deprecated",
        "test_rule_loader.cpp/rule_append",
        RULE,
        "- rule: r\n  condition: and proc.name = cat\n  append: true\n",
        warnings=("LOAD_DEPRECATED_ITEM",),
        message="'append' key is deprecated",
        rules=("r",),
    ),
    case(
        "rule_unknown_key",
        "test_rule_loader.cpp/rule_unknown_key",
        RULE + "  typo_field: some_value\n",
        warnings=("LOAD_UNKNOWN_KEY",),
        message="Unknown key 'typo_field'",
        rules=("r",),
    ),
    case(
        "list_cross_type_key",
        "test_rule_loader.cpp/list_cross_type_key_priority",
        "- list: my_list\n  items: [cat, bash]\n  priority: INFO\n"
        + RULE.replace("evt.type = open", "evt.type = close and proc.name in (my_list)"),
        warnings=("LOAD_UNKNOWN_KEY",),
        message="Unknown key 'priority'",
    ),
    case(
        "macro_unknown_key",
        "test_rule_loader.cpp/macro_unknown_key",
        "- macro: my_macro\n  condition: evt.type = close\n  typo_field: x\n"
        + RULE.replace("evt.type = open", "my_macro"),
        warnings=("LOAD_UNKNOWN_KEY",),
    ),
    case(
        "macro_name_invalid",
        "test_rule_loader.cpp/macro_name_invalid",
        "- macro: test-macro\n  condition: evt.type = close\n",
        warnings=("LOAD_INVALID_MACRO_NAME", "LOAD_UNUSED_MACRO"),
    ),
    case(
        "list_name_invalid",
        "test_rule_loader.cpp/list_name_invalid",
        "- list: test list\n  items: [open]\n",
        warnings=("LOAD_INVALID_LIST_NAME", "LOAD_UNUSED_LIST"),
    ),
    case(
        "exceptions_names_not_unique",
        "test_rule_loader.cpp/exceptions_names_not_unique",
        """
        - rule: test_rule
          desc: test rule
          condition: evt.type = execve and proc.cmdline contains curl
          output: command=%proc.cmdline
          priority: INFO
          exceptions:
            - name: test_exception
              fields: [proc.cmdline]
              comps: [contains]
              values:
                - [curl 127.0.0.1]
            - name: test_exception
              fields: [proc.cmdline]
              comps: [endswith]
              values:
                - [curl 127.0.0.1]
        """,
        warnings=("LOAD_EXCEPTION_NAME_NOT_UNIQUE",),
    ),
    case(
        "exceptions_override_no_values",
        "test_rule_loader.cpp/exceptions_override_no_values",
        """
        - rule: test_rule
          desc: test rule
          condition: evt.type = execve and proc.cmdline contains curl
          output: command=%proc.cmdline
          priority: INFO
          exceptions:
            - name: test_exception
              fields: [proc.cmdline]
              comps: [contains]
              values:
                - [curl 127.0.0.1]
        - rule: test_rule
          exceptions:
            - name: test_exception
              value: curl 1.1.1.1
          override:
            exceptions: append
        """,
        warnings=("LOAD_APPEND_NO_VALUES",),
        message="Overriding/appending exception with no values",
    ),
    case(
        "required_engine_version_semver",
        "test_rule_loader.cpp/required_engine_version_semver",
        "- required_engine_version: 0.26.0\n" + RULE,
        rules=("r",),
    ),
    case(
        "required_engine_version_not_semver",
        "test_rule_loader.cpp/required_engine_version_not_semver",
        "- required_engine_version: 26\n" + RULE,
        rules=("r",),
    ),
    case(
        "empty_source_in_append",
        "test_rule_loader.cpp/empty_source_addl_rule",
        RULE,
        "- rule: r\n  condition: and proc.name=apache\n  source:\n  append: true\n",
        warnings=("LOAD_DEPRECATED_ITEM",),
        rules=("r",),
    ),
    case(
        "unknown_source",
        "collector: define(rule_info), unknown source",
        RULE + "  source: nope\n",
        warnings=("LOAD_UNKNOWN_SOURCE",),
        rules=(),
    ),
    case(
        "evttype_warning_for_broad_condition",
        "test_rule_loader.cpp/evttype_warning_for_broad_condition",
        RULE.replace("evt.type = open", "proc.name = cat"),
        warnings=("LOAD_NO_EVTTYPE",),
        message="Rule matches too many evt.type values",
    ),
    case(
        "evttype_warning_disabled",
        "test_rule_loader.cpp/evttype_warning_disabled_by_warn_evttypes",
        RULE.replace("evt.type = open", "proc.name = cat") + "  warn_evttypes: false\n",
        rules=("r",),
    ),
    case(
        "unsafe_na_check",
        "filter_warning_resolver.cpp: LOAD_UNSAFE_NA_CHECK",
        """
        - rule: k
          desc: d
          condition: ka.verb = create and ka.target.namespace = <NA>
          output: o %ka.verb
          priority: INFO
          source: k8s_audit
        """,
        warnings=("LOAD_UNSAFE_NA_CHECK",),
    ),
    case(
        "capture_keys",
        "test_rule_loader.cpp/rule_capture_duration",
        RULE + "  capture: true\n  capture_duration: 10000\n",
        rules=("r",),
    ),
]

REFUSED = [
    case(
        "not_yaml",
        "legacy:invalid_not_yaml",
        "This is not yaml\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Rules content is not yaml",
    ),
    case(
        "not_array",
        "legacy:invalid_not_array",
        "foo: bar\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Rules content is not yaml array of objects",
    ),
    case(
        "array_item_not_object",
        "legacy:invalid_array_item_not_object",
        "- foo\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Each element should be a yaml associative array",
    ),
    case(
        "yaml_parse_error",
        "legacy:invalid_yaml_parse_error",
        "this : is : not : yaml\n",
        errors=("LOAD_ERR_YAML_PARSE",),
    ),
    case(
        "engine_version_not_number",
        "legacy:invalid_engine_version_not_number",
        "- required_engine_version: not-a-number\n" + RULE,
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Unable to parse engine version 'not-a-number'",
    ),
    case(
        "engine_version_mismatch",
        "legacy:engine_version_mismatch",
        "- required_engine_version: 9999999\n" + RULE,
        errors=("LOAD_ERR_VALIDATE",),
        message="Rules require engine version 0.9999999.0",
    ),
    case(
        "list_without_items",
        "legacy:invalid_list_without_items",
        "- list: bad_list\n  no_items: foo\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'items'",
    ),
    case(
        "list_items_null",
        "reader: decode_items (the value is not a sequence)",
        "- list: l\n  items:\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Value is not a sequence",
    ),
    case(
        "list_item_not_scalar",
        "reader: decode_seq",
        "- list: l\n  items: [a, [b]]\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="sequence value is not scalar",
    ),
    case(
        "macro_without_condition",
        "legacy:invalid_macro_without_condition",
        "- macro: bad_macro\n  nope: 1\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'condition'",
    ),
    case(
        "missing_list_name",
        "legacy:invalid_missing_list_name",
        "- list:\n  items: [foo]\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Mapping for key 'list' is empty",
    ),
    case(
        "missing_macro_name",
        "legacy:invalid_missing_macro_name",
        "- macro:\n  condition: evt.type=execve\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Mapping for key 'macro' is empty",
    ),
    case(
        "missing_rule_name",
        "legacy:invalid_missing_rule_name",
        RULE.replace("rule: r", "rule:"),
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Mapping for key 'rule' is empty",
    ),
    case(
        "empty_rule_name",
        "reader: decode_val (Value must be non-empty)",
        RULE.replace("rule: r", 'rule: ""'),
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Value must be non-empty",
    ),
    case(
        "rule_without_output",
        "legacy:invalid_rule_without_output",
        RULE.replace("  output: o %proc.name\n", ""),
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'output'",
    ),
    case(
        "rule_without_desc",
        "reader: read_item, a rule definition needs desc",
        RULE.replace("  desc: d\n", ""),
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'desc'",
    ),
    case(
        "invalid_priority",
        "reader: read_item (Invalid priority)",
        RULE.replace("INFO", "LOUD"),
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Invalid priority",
    ),
    case(
        "bool_not_decodable",
        "reader: decode_val<bool>",
        RULE + "  enabled: maybe\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Can't decode YAML scalar value",
    ),
    case(
        "capture_duration_not_a_number",
        "test_rule_loader.cpp/rule_capture_duration_wrong_type",
        RULE + '  capture_duration: "not_a_number"\n',
        errors=("LOAD_ERR_YAML_VALIDATE",),
    ),
    case(
        "macro_loop",
        "legacy:invalid_macro_loop",
        """
        - macro: macro_a
          condition: evt.type=open
        - macro: macro_b
          condition: macro_a
        - macro: macro_a
          condition: macro_b
        """,
        errors=("LOAD_ERR_VALIDATE",),
        message="reference loop in macro 'macro_a'",
    ),
    case(
        "macro_forward_reference",
        "compiler: compile_macros_infos (a macro sees the macros defined before it)",
        "- macro: m1\n  condition: m2\n- macro: m2\n  condition: evt.type = open\n"
        + RULE.replace("evt.type = open", "m1"),
        errors=("LOAD_ERR_VALIDATE",),
        warnings=("LOAD_UNUSED_MACRO",),  # Stockade goes on after the error; Falco stops
        message="Undefined macro 'm2' used in filter.",
    ),
    case(
        "list_loop",
        "legacy:invalid_list_loop",
        """
        - list: list_a
          items: [open]
        - list: list_b
          items: [list_a]
        - list: list_a
          items: [list_b]
        - macro: macro_a
          condition: evt.type in (list_a)
        - rule: sample rule
          priority: WARNING
          output: test
          desc: testdesc
          condition: macro_a
        """,
        errors=("LOAD_ERR_COMPILE_CONDITION",),
        message="unknown event type list_a",
    ),
    case(
        "overwrite_macro_undefined",
        "legacy:invalid_overwrite_macro",
        "- macro: some_macro\n  condition: evt.type=execve\n" + RULE.replace("evt.type = open", "some_macro"),
        "- macro: some_macro\n  condition: foo\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="Undefined macro 'foo' used in filter.",
    ),
    case(
        "append_macro_syntax",
        "legacy:invalid_append_macro",
        "- macro: some_macro\n  condition: evt.type=execve\n" + RULE.replace("evt.type = open", "some_macro"),
        "- macro: some_macro\n  condition: 'foo bar'\n  append: true\n",
        errors=("LOAD_ERR_COMPILE_CONDITION",),
        warnings=("LOAD_DEPRECATED_ITEM",),
    ),
    case(
        "rule_output_unknown_token",
        "legacy:invalid_rule_output",
        RULE.replace("o %proc.name", '"An open was seen %not_a_real_field"'),
        errors=("LOAD_ERR_COMPILE_OUTPUT",),
        message="not_a_real_field",
    ),
    case(
        "rule_output_unknown_field",
        "compiler: is_format_valid",
        RULE.replace("%proc.name", "%proc.nobody"),
        errors=("LOAD_ERR_COMPILE_OUTPUT",),
    ),
    case(
        "skip_unknown_error",
        "legacy:skip_unknown_error",
        RULE.replace("evt.type = open", "evt.type=open and proc.nobody=cat")
        + "  skip-if-unknown-filter: false\n",
        errors=("LOAD_ERR_COMPILE_CONDITION",),
        message="filter_check called with nonexistent field proc.nobody",
    ),
    case(
        "skip_unknown_unspec_error",
        "legacy:skip_unknown_unspec",
        RULE.replace("evt.type = open", "evt.type=open and proc.nobody=cat"),
        errors=("LOAD_ERR_COMPILE_CONDITION",),
    ),
    case(
        "unknown_event_type",
        "sinsp_filtercheck_event.cpp validate_filter_value (unknown event type)",
        RULE.replace("evt.type = open", "evt.type = some_invalid_event"),
        errors=("LOAD_ERR_COMPILE_CONDITION",),
        message="unknown event type some_invalid_event",
    ),
    case(
        "list_append_before_definition",
        "test_rule_loader.cpp/list_override_append_before_list_definition",
        "- list: l\n  items: [a]\n  override:\n    items: append\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="no list by that name already exists",
    ),
    case(
        "macro_append_before_definition",
        "test_rule_loader.cpp/macro_append_before_macro_definition",
        "- macro: m\n  condition: or evt.type = openat2\n  append: true\n",
        errors=("LOAD_ERR_VALIDATE",),
        warnings=("LOAD_DEPRECATED_ITEM",),
    ),
    case(
        "rule_override_append_before_definition",
        "test_rule_loader.cpp/rule_override_append_before_rule_definition",
        "- rule: r\n  condition: and proc.name = cat\n  override:\n    condition: append\n" + RULE,
        errors=("LOAD_ERR_VALIDATE",),
        message="no rule by that name already exists",
    ),
    case(
        "rule_override_replace_before_definition",
        "test_rule_loader.cpp/rule_override_replace_before_rule_definition",
        "- rule: r\n  condition: and proc.name = cat\n  override:\n    condition: replace\n" + RULE,
        errors=("LOAD_ERR_VALIDATE",),
        message="An 'override.<key>: replace' to a rule was requested",
    ),
    case(
        "rule_incorrect_override_type",
        "test_rule_loader.cpp/rule_incorrect_override_type",
        RULE,
        "- rule: r\n  desc: x\n  condition: and proc.name = cat\n  priority: WARNING\n  override:\n"
        "    desc: replace\n    condition: append\n    priority: append\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Key 'priority' cannot be appended to, use 'replace' instead",
    ),
    case(
        "rule_incorrect_append_override",
        "test_rule_loader.cpp/rule_incorrect_append_override",
        RULE,
        "- rule: r\n  desc: x\n  condition: and proc.name = cat\n  append: true\n  override:\n    desc: replace\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        warnings=("LOAD_DEPRECATED_ITEM",),
        message="Keys 'override' and 'append: true' cannot be used together",
    ),
    case(
        "rule_override_without_field",
        "test_rule_loader.cpp/rule_override_without_field",
        RULE,
        "- rule: r\n  desc: x\n  override:\n    desc: replace\n    condition: append\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="An append override for 'condition' was specified but 'condition' is not defined",
    ),
    case(
        "rule_override_extra_field",
        "test_rule_loader.cpp/rule_override_extra_field",
        RULE,
        "- rule: r\n  desc: x\n  condition: and proc.name = cat\n  priority: WARNING\n  override:\n"
        "    desc: replace\n    condition: append\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Unexpected key 'priority'",
    ),
    case(
        "missing_enabled_key_with_override",
        "test_rule_loader.cpp/missing_enabled_key_with_override",
        RULE,
        "- rule: r\n  desc: x\n  override:\n    desc: replace\n    enabled: replace\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="'enabled' was specified but 'enabled' is not defined",
    ),
    case(
        "override_exceptions_replace_needs_fields",
        "test_rule_loader.cpp/rule_override_exceptions_required_fields",
        RULE
        + "  exceptions:\n    - name: e\n      fields: proc.name\n      comps: in\n      values: [cat]\n",
        "- rule: r\n  exceptions:\n    - name: e\n      values: [echo]\n  override:\n    exceptions: append\n",
        "- rule: r\n  exceptions:\n    - name: e\n      values: [id]\n  override:\n    exceptions: replace\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'fields'",
    ),
    case(
        "redefine_rule_different_source",
        "test_rule_loader.cpp/redefine_rule_different_source",
        RULE.replace("evt.type = open", "ka.verb = GET").replace("%proc.name", "%ka.verb")
        + "  source: k8s_audit\n",
        RULE + "  source: syscall\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="Rule has been re-defined with a different source",
    ),
    case(
        "append_rule_without_condition",
        "legacy:invalid_append_rule_without_condition",
        RULE,
        "- rule: r\n  desc: x\n  append: true\n",
        errors=("LOAD_ERR_VALIDATE",),
        warnings=("LOAD_DEPRECATED_ITEM",),
        message="Appended rule must have exceptions or condition property",
    ),
    case(
        "exception_no_name",
        "legacy:exceptions/item_no_name",
        RULE + "  exceptions:\n    - fields: [proc.name]\n      values: [[cat]]\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'name'",
    ),
    case(
        "exception_no_fields",
        "legacy:exceptions/item_no_fields",
        RULE + "  exceptions:\n    - name: ex1\n      comps: [=]\n",
        errors=("LOAD_ERR_YAML_VALIDATE",),
        message="Item has no mapping for key 'fields'",
    ),
    case(
        "exception_comps_fields_len_mismatch",
        "legacy:exceptions/item_comps_fields_len_mismatch",
        RULE + "  exceptions:\n    - name: ex1\n      fields: [proc.name, fd.name]\n      comps: [=]\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="Fields and comps lists must have equal length",
    ),
    case(
        "exception_unknown_comp",
        "legacy:exceptions/item_unknown_comp",
        RULE + "  exceptions:\n    - name: ex1\n      fields: [proc.name]\n      comps: [no-comp]\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="'no-comp' is not a supported comparison operator",
    ),
    case(
        "exception_unknown_field",
        "legacy:exceptions/item_unknown_fields",
        RULE + "  exceptions:\n    - name: ex1\n      fields: [not.exist]\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="'not.exist' is not a supported filter field",
    ),
    case(
        "exception_fields_values_len_mismatch",
        "legacy:exceptions/item_fields_values_len_mismatch",
        RULE + "  exceptions:\n    - name: ex1\n      fields: [proc.name, fd.name]\n      values: [[cat]]\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="Fields and values lists must have equal length",
    ),
    case(
        "exception_append_new_without_fields",
        "legacy:exceptions/rule_exception_new_no_field_append",
        RULE,
        "- rule: r\n  exceptions:\n    - name: proc_cmdline\n      values: [[x]]\n  override:\n    exceptions: append\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="Rule exception must have fields property",
    ),
    case(
        "exception_invalid_compound_comp",
        "test_rule_loader.cpp/exceptions_modifier_op_list_op_with_modifier",
        RULE + "  exceptions:\n    - name: ex\n      fields: [proc.name]\n      comps: [in oneof]\n"
        "      values:\n        - [[bash]]\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="'in oneof' is not a supported comparison operator",
    ),
    case(
        "exception_single_field_bad_comp",
        "test_rule_loader.cpp/exceptions_modifier_op_invalid_base_operator_scalar_field",
        RULE
        + "  exceptions:\n    - name: ex\n      fields: proc.name\n      comps: frobulate oneof\n      values: [bash]\n",
        errors=("LOAD_ERR_VALIDATE",),
        message="comps must be one of",
    ),
]


def _load(tmp_path: Path, texts: tuple[str, ...]) -> Ruleset:
    paths = []
    for i, t in enumerate(texts):
        p = tmp_path / f"f{i}.yaml"
        p.write_text(textwrap.dedent(t))
        paths.append(str(p))
    return check_rules(paths)


@pytest.mark.parametrize("c", ACCEPTED + REFUSED, ids=lambda c: c.id)
def test_falco_case(tmp_path: Path, c: Case) -> None:
    rs = _load(tmp_path, c.files)
    errors = {p.code for p in rs.errors}
    warnings = {p.code for p in rs.warnings}
    assert (errors, warnings) == (set(c.errors), set(c.warnings)), [str(p) for p in rs.problems]
    if c.message is not None:
        first = rs.errors[0] if rs.errors else rs.warnings[0]
        assert c.message in first.message, str(first)
    for p in rs.problems:
        assert p.location is not None and p.location.file.startswith(str(tmp_path)), str(p)
    if c.rules is not None:
        assert sorted(r.name for r in rs.rules.values() if r.ast is not None) == sorted(c.rules)


def test_yaml_cpp_readings_are_kept_as_text(tmp_path: Path) -> None:
    rs = _load(tmp_path, (ACCEPTED[5].files[0],))
    r = rs.rules["r"]
    # yaml-cpp reads `!= after evt.type` as the tag '!=' on the text 'after evt.type'
    assert r.desc == "after evt.type"
    assert r.tags == ["yes", "no", "0x1F", "2024-01-01", "="]
    assert r.output == "<< merged %proc.name"


def test_skipped_rule_does_not_run_and_the_rest_do() -> None:
    text = textwrap.dedent(RULE) + textwrap.dedent(
        """
        - rule: skipped
          desc: d
          condition: evt.type = open and proc.nobody = x
          output: o
          priority: INFO
          skip-if-unknown-filter: true
        """
    )
    e = Engine.from_files([("f.yaml", text)], rule_matching="all")
    assert [a.rule for a in e.process(Event("syscall", {"evt.type": "open", "proc.name": "cat"}))] == ["r"]


def _values(rs: Ruleset, rule: str) -> list[str]:
    ast = rs.rules[rule].ast
    assert ast is not None
    for n in walk(ast):
        if isinstance(n, Check) and n.lhs.name == "proc.name" and isinstance(n.rhs, ListLit):
            return [i.value for i in n.rhs.items]
    raise AssertionError("no proc.name in (...)")


def test_lists_resolve_as_falco_substitutes_them(tmp_path: Path) -> None:
    """compiler: compile_list_infos expands a reference to an earlier list one level, then
    resolve_list substitutes the lists into the condition text in load order: a reference to a later
    list is expanded by it, a chain beyond one level or a loop leaves the name as text."""
    rs = _load(
        tmp_path,
        (
            textwrap.dedent(
                """
            - list: fwd
              items: [later, z]
            - list: a
              items: [x]
            - list: b
              items: [a, y]
            - list: c
              items: [b]
            - list: later
              items: [w]
            - list: shells
              items: [bash]
            - list: shells
              items: [zsh]
              override:
                items: append
            """
            )
            + "".join(
                RULE.replace("rule: r", f"rule: {n}").replace(
                    "evt.type = open", f"evt.type = open and proc.name in ({n})"
                )
                for n in ("fwd", "b", "c", "shells")
            ),
        ),
    )
    assert not rs.problems, [str(p) for p in rs.problems]
    assert _values(rs, "fwd") == ["w", "z"]
    assert _values(rs, "b") == ["x", "y"]
    assert _values(rs, "c") == ["a", "y"]  # one level: `a` stays text, as in Falco
    assert _values(rs, "shells") == ["bash", "zsh"]


def test_unused_macro_and_list_marks_follow_falco(tmp_path: Path) -> None:
    """compiler: every macro is resolved (marking what it uses), used or not; a list a list refers to
    is used."""
    rs = _load(
        tmp_path,
        (
            """
            - list: inner
              items: [a]
            - list: outer
              items: [inner]
            - macro: base
              condition: proc.name in (outer)
            - macro: unused_top
              condition: base
            """,
        ),
    )
    assert [(p.code, p.location.item if p.location else None) for p in rs.problems] == [
        ("LOAD_UNUSED_MACRO", "macro 'unused_top'")
    ]
