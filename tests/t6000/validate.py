# Validate JSON Lines of wf events against the shipped JSON Schemas with
# an independent validator (python3-jsonschema, draft 2020-12).
#
#   python3 validate.py SCHEMA_DIR TYPE FILE...
#
# TYPE is an event type (multi_workflow.plan_created...) for bare
# payloads, or "cloudevents" for envelopes, whose data is checked against
# the schema its type names.  Every schema is first checked against the
# draft 2020-12 meta-schema.  Exits 1, naming the line and the failure,
# when any line is invalid.
import json
import os
import sys
import warnings

from jsonschema import Draft202012Validator


def load(schema_dir):
    store = {}
    for name in sorted(os.listdir(schema_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(schema_dir, name)) as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
        if schema.get("$id") != "urn:wf:schema:" + name[:-len(".json")]:
            sys.exit("%s: $id does not match the file name" % name)
        store[schema["$id"]] = schema
    return store


def validator(store, schema):
    try:
        from referencing import Registry, Resource
    except ImportError:
        # jsonschema before 4.18 (Debian 12 has 4.10) resolves with this.
        from jsonschema import RefResolver
        resolver = RefResolver.from_schema(schema, store=store)
        return Draft202012Validator(schema, resolver=resolver)
    registry = Registry().with_resources(
        (uri, Resource.from_contents(s)) for uri, s in store.items())
    return Draft202012Validator(schema, registry=registry)


def main():
    warnings.simplefilter("ignore", DeprecationWarning)
    schema_dir, kind, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    store = load(schema_dir)
    uri = "urn:wf:schema:" + kind
    if uri not in store:
        sys.exit("no schema for %s" % kind)
    v = validator(store, store[uri])
    bad = 0
    n = 0
    for path in files:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                n += 1
                event = json.loads(line)
                for err in v.iter_errors(event):
                    where = "".join("[%r]" % p for p in err.absolute_path)
                    print("%s:%d: %s: %s" % (path, lineno, where or ".",
                                             err.message), file=sys.stderr)
                    bad += 1
    if n == 0:
        sys.exit("no events to validate")
    sys.exit(1 if bad else 0)


main()
