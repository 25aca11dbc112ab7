// node-opcua server for mrv-agent's integration tests: Basic256Sha256 (Sign and
// SignAndEncrypt) with username authentication only, and a few variables that change
// every second. Usage: node server.js PORT PKI_DIR USER PASSWORD
// Prints "ready" on stdout once it listens.
"use strict";
const path = require("path");
const {
  OPCUAServer, OPCUACertificateManager, MessageSecurityMode, SecurityPolicy, Variant, DataType, StatusCodes,
} = require("node-opcua");

async function main() {
  const [port, pki, user, password] = process.argv.slice(2);
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, "server"),
    automaticallyAcceptUnknownCertificate: true, // the test checks the client side's trust
  });
  await serverCertificateManager.initialize();
  const server = new OPCUAServer({
    port: Number(port),
    hostname: "127.0.0.1",
    serverCertificateManager,
    securityPolicies: [SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
    securityModes: [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: false,
    userManager: { isValidUser: (u, p) => u === user && p === password },
    buildInfo: { productName: "mrv-agent test server" },
  });
  await server.initialize();
  const ns = server.engine.addressSpace.registerNamespace("urn:mrv-agent:test:line");
  const line = ns.addObject({ organizedBy: server.engine.addressSpace.rootFolder.objects, browseName: "Line1" });
  const t0 = Date.now();
  let energy = 4000000;
  ns.addVariable({
    componentOf: line, browseName: "Current", nodeId: "s=Line1.Current", dataType: "Double",
    value: { get: () => new Variant({ dataType: DataType.Double, value: 180 + Math.sin((Date.now() - t0) / 10000) }) },
  });
  ns.addVariable({
    componentOf: line, browseName: "Energy", nodeId: "s=Line1.Energy", dataType: "UInt32",
    value: { get: () => new Variant({ dataType: DataType.UInt32, value: energy }) },
  });
  ns.addVariable({
    componentOf: line, browseName: "Broken", nodeId: "s=Line1.Broken", dataType: "Double",
    value: { get: () => StatusCodes.BadSensorFailure },
  });
  setInterval(() => { energy += 5; }, 1000);
  await server.start();
  process.stdout.write("ready\n");
  const stop = async () => { await server.shutdown(100); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
