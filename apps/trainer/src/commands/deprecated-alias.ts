import { Option, type Command } from 'commander';

/**
 * Keeps an old spelling of an option working, so existing scripts do not break: `alias` is hidden from --help,
 * takes its value exactly as `canonical` does (same parser, same choices), stores it under the canonical option and
 * says on stderr that the spelling is deprecated.
 */
export function addDeprecatedAlias(command: Command, alias: string, canonical: string): Command {
  const target = command.options.find((option) => option.long === canonical);
  if (!target) throw new Error(`${command.name()} has no option ${canonical} to alias`);
  const valuePart = target.flags.slice(target.flags.indexOf(canonical) + canonical.length);
  const hidden = new Option(`${alias}${valuePart}`, `deprecated spelling of ${canonical}`).hideHelp();
  if (target.parseArg) hidden.argParser(target.parseArg);
  if (target.argChoices) hidden.choices(target.argChoices);
  command.addOption(hidden);
  // Commander's own listener for the hidden option runs first, so the value read here is already parsed.
  command.on(`option:${hidden.name()}`, () => {
    process.stderr.write(`warning: ${alias} is deprecated; use ${canonical}\n`);
    command.setOptionValueWithSource(target.attributeName(), command.getOptionValue(hidden.attributeName()), 'cli');
    command.setOptionValue(hidden.attributeName(), undefined);
  });
  return command;
}
