"""Payloads: render an alert into a JSON or XML request body, and read the ticket id back.

This docstring is the template language's reference; the modules of the package:

- `tokens`: the built-in `##NAME##` tokens and the token grammar (also for URLs and headers)
- `context`: `RenderContext`, the values a template reads for one alert event
- `sandbox`: the hardened Jinja environment; `render_limits`: the budget that bounds a render
- `escaping`: values as JSON string content or XML text; `formats`: json or xml
- `templates`: compiling and rendering, errors with template lines
- `field_limits`: the payload parsed and its fields cut to the target's limits
- `samples`: the save-time check against sample contexts
- `extraction`: the ticket id read back from the answer
- `requests`: the delivery requests (method, URL, headers, body) per alert status
- `target_facts`: what payloads know of Autotask, to be supplied by the target adapter

Templates are Jinja2, run in an immutable sandbox with `StrictUndefined` and autoescaping off.
Alert data enters only as context values, never as template source, so text such as `{{7*7}}` or
`##TITLE##` inside an alert arrives literally (reliability-security.md §4.7, S6).

Two ways to write a value
-------------------------
- `##NAME##` tokens, as in LogicMonitor's HTTP delivery (DESIGN.md §4). Built-in token names are
  case-insensitive (`##title##` is `##TITLE##`); any other name is an alert property looked up by
  its exact name (`##autotask.accountid##`), and renders empty when the alert lacks it. A name in
  capitals without a dot that is not a built-in is refused as a misspelt token. Tokens are found
  in the template's text only: inside `{{ … }}` and `{% … %}` they are ordinary characters.
- Jinja variables, with the same values:

  ==============  ===========================================================================
  `alert`         id, status, type, level (= severity), title, message, host, tenant,
                  datasource (= monitor), instance, datapoint, value, threshold, start,
                  occurred, note, admin (= actor), source, properties
  `ticket`        id (None before the ticket exists), number, marker, description
  `note`          title, text: the note the connector composed for this event
  `autotask`      company_id (= account_id), priority, status, queue_id, due_date,
                  issue_type, sub_issue_type, work_type, ticket_category, ticket_type, source,
                  note_type, publish, zone_url; integration_code is always blank (the
                  targets add the tracking identifier after rendering)
  `properties`    every alert property by name (`properties["autotask.accountid"]`)
  `tokens`        every built-in token by name (`tokens.TITLE`)
  ==============  ===========================================================================

  `TOKENS` (tokens.py) lists each built-in token with its variable and meaning; payload_templates/
  README.md is the admins' copy of that table.

Escaping
--------
Every emitted value (`{{ … }}` and `##…##` alike) is escaped for the payload's format:

- JSON: as the content of a JSON string, so string tokens go inside quotes (`"##TITLE##"`).
  Integers and booleans render as bare JSON (`"priority": ##PRIORITY##`); an unset value
  (None) renders as nothing, so a bare optional value that is unset makes the payload invalid,
  which the save-time check catches. `{{ value|tojson }}` emits a complete JSON value instead.
- XML: as text, with `& < > " '` and tab, newline and carriage return as references, and the
  characters XML 1.0 cannot carry (NUL, the other C0 controls, U+FFFE, U+FFFF) removed.
  CDATA sections are refused when the template is compiled: escaped text inside CDATA would
  arrive with its references showing.

Lone surrogates become U+FFFD in both formats (they cannot be encoded as UTF-8).

Optional values
---------------
Autotask answers an explicit null on create with HTTP 500, so leave unset fields out (Reference:
KelvinTegelaar/AutotaskAPI issue #26, autotask-api.md §3):

    {% if autotask.queue_id is not none %}
      "queueID": ##QUEUEID##,
    {% endif %}

Block tags on a line of their own leave no blank line behind (trim_blocks and lstrip_blocks).

Limits
------
The sandbox bounds what template code may touch, not how long it runs (§4.7), so rendering is
also bounded (`RenderLimits`, render_limits.py): output size, loop iterations, the size of every
intermediate value, the characters allocated in total, and wall time. Filters and methods that
multiply their input by a number argument (`center`, `indent`, `format`, `batch`, `ljust`,
`str % args` …) are not available; list repetition (`[x] * n`) is refused.

After rendering, `enforce_limits` (field_limits.py) parses the payload (json.loads, or a hardened
lxml parser that refuses any DOCTYPE) and truncates Autotask's text fields with a visible marker.
"""
