/** Food-11's classes in its index order: `id` is the folder name used here, `name` Food-11's display name. */
export const FOOD11_LABELS = [
  { index: 0, id: 'Bread', name: 'Bread' },
  { index: 1, id: 'Dairy-product', name: 'Dairy product' },
  { index: 2, id: 'Dessert', name: 'Dessert' },
  { index: 3, id: 'Egg', name: 'Egg' },
  { index: 4, id: 'Fried-food', name: 'Fried food' },
  { index: 5, id: 'Meat', name: 'Meat' },
  { index: 6, id: 'Noodles-Pasta', name: 'Noodles/Pasta' },
  { index: 7, id: 'Rice', name: 'Rice' },
  { index: 8, id: 'Seafood', name: 'Seafood' },
  { index: 9, id: 'Soup', name: 'Soup' },
  { index: 10, id: 'Vegetable-Fruit', name: 'Vegetable/Fruit' },
] as const;

export interface Label {
  index: number;
  id: string;
  name: string;
}

/** Folder names are compared loosely so 'Dairy product', 'dairy_product' and 'Dairy-product' all match. */
export function normaliseClassName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

/** The Food-11 label a folder name stands for, if any. */
export function food11LabelFor(folder: string): Label | undefined {
  const key = normaliseClassName(folder);
  return FOOD11_LABELS.find((l) => normaliseClassName(l.id) === key || normaliseClassName(l.name) === key);
}
