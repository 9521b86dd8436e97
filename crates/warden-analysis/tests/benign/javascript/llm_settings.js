// Generation settings from the environment: token counts, not tokens.
const maxTokens = Number(process.env.MAX_TOKENS || 1024);
const perMinute = Number(process.env['TOKENS_PER_MINUTE'] || 90000);
const tokenLimit = Number(process.env.TOKEN_LIMIT || 4096);

function budget(promptTokens) {
  return Math.max(0, Math.min(maxTokens, tokenLimit - promptTokens));
}

for (const used of [100, 3000, 5000]) {
  console.log(used, budget(used), Math.floor(perMinute / Math.max(1, budget(used))));
}
