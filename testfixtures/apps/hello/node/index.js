// A Node.js function: plldb reports it as unsupported (only Python runtimes are served).
exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify(event) });
