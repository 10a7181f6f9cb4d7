export * from "@umbra/protocol";
