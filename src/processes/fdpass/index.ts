// Passing connections between processes, plugged into every connection's messages (as CPython's
// connection.py registers its reducer with multiprocessing.reduction).
import { register } from "../../connection/reduction.ts";
import { connections } from "./transfer.ts";

register(connections);
