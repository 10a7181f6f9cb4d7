export * from "@umbra/crypto";
