// Served under /extensions/ServerIsolated/ and listed by /extensions.
console.log("ServerIsolated extension loaded");
