#!/usr/bin/python3
"""Write a botocore data dir whose SQS model speaks the JSON protocol.

usage: sqs_json_model.py OUTDIR      then: export AWS_DATA_PATH=OUTDIR

Debian's botocore (1.29) describes SQS with the query (XML) protocol; AWS moved SQS to the JSON
protocol in botocore 1.31, and fauxqs speaks only JSON. This rewrites the installed model the
way AWS did: protocol json 1.0, target prefix AmazonSQS, and no query-only serialisation hints
(locationName, flattened), so the JSON member names are the shape member names.
"""
import json, os, sys
import botocore.loaders

def strip(node):
    if isinstance(node, dict):
        for k in ("locationName", "flattened", "xmlNamespace", "resultWrapper"):
            node.pop(k, None)
        for v in node.values():
            strip(v)
    elif isinstance(node, list):
        for v in node:
            strip(v)

def main():
    out = sys.argv[1]
    loader = botocore.loaders.Loader()
    model = loader.load_service_model("sqs", "service-2")
    api = model["metadata"]["apiVersion"]
    if model["metadata"].get("protocol") != "json":
        md = model["metadata"]
        md["protocol"] = "json"
        md["jsonVersion"] = "1.0"
        md["targetPrefix"] = "AmazonSQS"
        md.pop("xmlNamespace", None)
        for op in model["operations"].values():
            op.get("output", {}).pop("resultWrapper", None)
        for shape in model["shapes"].values():
            strip(shape)
    d = os.path.join(out, "sqs", api)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "service-2.json"), "w") as f:
        json.dump(model, f)

if __name__ == "__main__":
    main()
