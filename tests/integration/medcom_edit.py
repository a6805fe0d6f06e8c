#!/usr/bin/env python3
# Edit a MedCom example for test_medcom.sh: medcom_edit.py IN OUT OP [ARG].
import json
import sys
import uuid

src, dst, op = sys.argv[1], sys.argv[2], sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else None
with open(src, encoding="utf-8") as f:
    b = json.load(f)
entries = b["entry"]
header = entries[0]["resource"]


def resources(rt):
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == rt]


def org(ref):
    oid = ref.split("/")[-1]
    return next(r for r in resources("Organization") if r["id"] == oid)


if op == "no-cpr":
    for p in resources("Patient"):
        p["identifier"] = [i for i in p["identifier"] if i.get("system") != "urn:oid:1.2.208.176.1.2"]
elif op == "two-primary":
    header["destination"].append(json.loads(json.dumps(header["destination"][0])))
elif op == "bad-gln":
    rec = org(header["destination"][0]["receiver"]["reference"])
    for i in rec["identifier"]:
        if "gs1.org" in i["system"]:
            i["value"] = i["value"][:12] + str((int(i["value"][12]) + 1) % 10)
elif op == "no-provenance":
    b["entry"] = [e for e in entries if e["resource"]["resourceType"] != "Provenance"]
elif op == "bad-event":
    header["eventCoding"]["code"] = "no-such-message"
elif op == "no-zone":
    b["timestamp"] = b["timestamp"][:19]
elif op == "new-bundle":
    b["id"] = str(uuid.uuid4())
elif op == "new-header":
    old, new = header["id"], str(uuid.uuid4())
    header["id"] = new
    entries[0]["fullUrl"] = entries[0]["fullUrl"].replace(old, new)
    for p in resources("Provenance"):
        for t in p.get("target", []):
            if t["reference"].endswith(old):
                t["reference"] = t["reference"].replace(old, new)
elif op == "deceased":
    for p in resources("Patient"):
        p["deceasedBoolean"] = True
elif op == "ack-for":
    header["response"]["identifier"] = arg
elif op == "ack-from":
    # arg: GLN,SOR of the acknowledging organisation
    gln, sor = arg.split(",")
    snd = org(header["sender"]["reference"])
    snd["identifier"] = [{"system": "https://www.gs1.org/gln", "value": gln},
                         {"system": "urn:oid:1.2.208.176.1.1", "value": sor}]
    header["source"]["endpoint"] = "https://sor2.sum.dsdn.dk/#id=" + sor
elif op == "from-to":
    # arg: GLN,SOR of the sender and GLN,SOR of the primary receiver
    sgln, ssor, rgln, rsor = arg.split(",")
    for ref, gln, sor in ((header["sender"]["reference"], sgln, ssor),
                          (header["destination"][0]["receiver"]["reference"], rgln, rsor)):
        org(ref)["identifier"] = [{"system": "https://www.gs1.org/gln", "value": gln},
                                  {"system": "urn:oid:1.2.208.176.1.1", "value": sor}]
    header["source"]["endpoint"] = "https://sor2.sum.dsdn.dk/#id=" + ssor
    header["destination"][0]["endpoint"] = "https://sor2.sum.dsdn.dk/#id=" + rsor
elif op == "add-cc":
    # arg: GLN,SOR of a cc receiver: a destination with destinationUse cc and its Organization
    gln, sor = arg.split(",")
    oid = str(uuid.uuid4())
    base = entries[0]["fullUrl"].rsplit("/MessageHeader/", 1)[0]
    entries.append({"fullUrl": base + "/Organization/" + oid,
                    "resource": {"resourceType": "Organization", "id": oid,
                                 "identifier": [{"system": "https://www.gs1.org/gln", "value": gln},
                                                {"system": "urn:oid:1.2.208.176.1.1", "value": sor}],
                                 "name": "cc " + sor}})
    cc = json.loads(json.dumps(header["destination"][0]))
    for e in cc["extension"]:
        e["valueCoding"]["code"] = "cc"
    cc["endpoint"] = "https://sor2.sum.dsdn.dk/#id=" + sor
    cc["receiver"] = {"reference": "Organization/" + oid}
    header["destination"].append(cc)
elif op == "ecpr":
    # arg: the X-eCPR that replaces the CPR
    for p in resources("Patient"):
        p["identifier"] = [i for i in p["identifier"] if i.get("system") != "urn:oid:1.2.208.176.1.2"]
        p["identifier"].append({"system": "urn:oid:1.2.208.176.1.6.1.1", "value": arg})
else:
    sys.exit("unknown operation " + op)
with open(dst, "w", encoding="utf-8") as f:
    json.dump(b, f, ensure_ascii=False)
