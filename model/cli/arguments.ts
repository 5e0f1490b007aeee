import { InvalidArgumentError } from 'commander';

/** Commander argument parsers that name the option in their message, shared by the model CLIs. */

export const positiveInt = (option: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${option} must be a whole number ≥ 1.`);
  return n;
};

export const wholeNumber = (option: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${option} must be a whole number ≥ 0.`);
  return n;
};

export const nonNegative = (option: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${option} must be a number ≥ 0.`);
  return n;
};

export const fraction = (option: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError(`${option} must be a number from 0 to 1.`);
  return n;
};

export const wholeNumberUpTo = (option: string, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new InvalidArgumentError(`${option} must be a whole number from 0 to ${max}.`);
  return n;
};

/** `<name>=<factor>` pairs, the factor a number > 0, gathered over repeated values into one record. */
export const namedFactors =
  (option: string) =>
  (value: string, previous: Record<string, number> | undefined): Record<string, number> => {
    const cut = value.lastIndexOf('=');
    const name = value.slice(0, cut);
    const factor = Number(value.slice(cut + 1));
    if (cut <= 0 || !Number.isFinite(factor) || factor <= 0)
      throw new InvalidArgumentError(`${option} ${value}: give <name>=<factor>, the factor a number > 0.`);
    return { ...previous, [name]: factor };
  };
