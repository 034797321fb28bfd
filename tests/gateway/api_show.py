"""`make demo`: short summaries of the files the demo's API calls wrote.

Usage: api_show.py counts EXPORT | edit EXPORT OUT | preview PREVIEW | job JOB | live JSON_LIST NAME
"""
import json
import sys


def main():
    what, *args = sys.argv[1:]
    load = lambda p: json.load(open(p) if p != "-" else sys.stdin)
    if what == "counts":
        d = load(args[0])
        print("      " + ", ".join(f"{len(v)} {k}" for k, v in d["entities"].items() if v))
    elif what == "edit":
        d = load(args[0])
        tool = next(t for t in d["entities"]["tools"] if t["name"] == "weather-current")
        tool["description"] = "Current weather (imported through the API)"
        json.dump(d, open(args[1], "w"), indent=2)
    elif what == "preview":
        p = load(args[0])
        acts = [f"{i['action']} {i['kind']} {i['name']} ({', '.join(i.get('fields') or [])})"
                for i in p["items"] if i["action"] not in ("unchanged", "skip")]
        print(f"      valid: {p['valid']}; " + ("; ".join(acts) or "nothing to do"))
    elif what == "job_id":
        print(load("-")["job_id"])
    elif what == "job":
        j = load(args[0])
        print(f"      job {j['id'][:8]}: {j['state']}, counts {j['counts']}")
    elif what == "live":
        tools = load("-")
        print("      on the gateway: " + next(t["description"] for t in tools if t["name"] == args[0]))
    else:
        sys.exit(f"unknown: {what}")


main()
