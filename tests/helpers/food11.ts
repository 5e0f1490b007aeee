/**
 * Food-11's display names in class-index order, written out here rather than imported from model/src so that the
 * service tests check the product against the specification, not against itself.
 */
export const FOOD11_DISPLAY_NAMES: readonly string[] = [
  'Bread',
  'Dairy product',
  'Dessert',
  'Egg',
  'Fried food',
  'Meat',
  'Noodles/Pasta',
  'Rice',
  'Seafood',
  'Soup',
  'Vegetable/Fruit',
];
